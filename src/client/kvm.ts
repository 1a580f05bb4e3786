/** The bucket manager (nats.js `Kvm`, nats.go `KeyValueManager`): create, open, list, update, destroy. */
import type { Connection } from "./connection.ts";
import { statusFromWire } from "./entry.ts";
import { Bucket } from "./kv.ts";
import type { CallOptions, KV, KvOptions, KvStatus } from "./types.ts";
import { checkBucketConfig, checkOptions, checkTimeout, validateBucketName } from "./validate.ts";

const CALL_OPTIONS = ["timeoutMs"] as const;

export class Kvm {
  private readonly conn: Connection;

  constructor(nc: Connection) {
    if (typeof nc !== "object" || nc === null || typeof (nc as Partial<Connection>).request !== "function") {
      throw new TypeError("Kvm needs a connection from connect()");
    }
    this.conn = nc;
  }

  /**
   * Creates a bucket and returns its handle. Creating a bucket that exists with the same config
   * succeeds (idempotent); with a different config fails with BUCKET_EXISTS.
   */
  async create(name: string, options?: KvOptions, call?: CallOptions): Promise<KV> {
    validateBucketName(name);
    const config = checkBucketConfig(options);
    const o = checkOptions(call, CALL_OPTIONS, "call");
    await this.conn.request("bucket.create", { bucket: name, config }, { timeoutMs: checkTimeout(o.timeoutMs) });
    return new Bucket(this.conn, name);
  }

  /** The handle of an existing bucket; BUCKET_NOT_FOUND when it does not exist. */
  async open(name: string, call?: CallOptions): Promise<KV> {
    validateBucketName(name);
    const o = checkOptions(call, CALL_OPTIONS, "call");
    await this.conn.request("bucket.status", { bucket: name }, { timeoutMs: checkTimeout(o.timeoutMs) });
    return new Bucket(this.conn, name);
  }

  /** The status of every bucket. */
  async list(call?: CallOptions): Promise<KvStatus[]> {
    const o = checkOptions(call, CALL_OPTIONS, "call");
    const statuses = await this.conn.request("bucket.list", {}, { timeoutMs: checkTimeout(o.timeoutMs) });
    return statuses.map(statusFromWire);
  }

  /** The status of one bucket (as `(await open(name)).status()`, in one call). */
  async status(name: string, call?: CallOptions): Promise<KvStatus> {
    validateBucketName(name);
    const o = checkOptions(call, CALL_OPTIONS, "call");
    return statusFromWire(await this.conn.request("bucket.status", { bucket: name }, { timeoutMs: checkTimeout(o.timeoutMs) }));
  }

  /**
   * Changes a bucket's configuration (history, ttlMs, limits, description, metadata, replicas; storage
   * cannot change) and returns the new status. Fields left out keep their value. A change of
   * `replicas` answers once the bucket runs on its new replicas (give it a `timeoutMs` long enough for
   * new replicas to catch up); it is refused (UNAVAILABLE, retried until the deadline) while a
   * membership change is in progress.
   */
  async update(name: string, options: KvOptions, call?: CallOptions): Promise<KvStatus> {
    validateBucketName(name);
    const config = checkBucketConfig(options);
    const o = checkOptions(call, CALL_OPTIONS, "call");
    return statusFromWire(await this.conn.request("bucket.update", { bucket: name, config }, { timeoutMs: checkTimeout(o.timeoutMs) }));
  }

  /** Deletes a bucket and all its data; BUCKET_NOT_FOUND when it does not exist. Returns true. */
  async destroy(name: string, call?: CallOptions): Promise<boolean> {
    validateBucketName(name);
    const o = checkOptions(call, CALL_OPTIONS, "call");
    await this.conn.request("bucket.delete", { bucket: name }, { timeoutMs: checkTimeout(o.timeoutMs) });
    return true;
  }
}
