/**
 * One WebSocket, browser-style. Uses `globalThis.WebSocket` where it exists (browsers, Node >= 22) and
 * otherwise loads the `ws` package dynamically, so this module has no Node-only static import and the
 * client bundles for a browser. Both expose the same WHATWG API (onopen/onmessage/onclose, binaryType).
 */
import { PROTOCOL_LIMITS } from "../shared/protocol.ts";

/** The WHATWG WebSocket members this module uses (implemented by browsers, undici and `ws`). */
interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null;
  onerror: ((event: { message?: string; error?: unknown }) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drop the TCP connection without a closing handshake. */
  terminate?: () => void;
}

type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: object) => WebSocketLike;

interface Factory {
  readonly ctor: WebSocketConstructor;
  /** `ws` accepts an options object (maxPayload); browsers do not. */
  readonly isNodeWs: boolean;
}

let factory: Promise<Factory> | undefined;

function webSocketFactory(): Promise<Factory> {
  factory ??= (async (): Promise<Factory> => {
    const global = globalThis as { WebSocket?: unknown };
    if (typeof global.WebSocket === "function") return { ctor: global.WebSocket as WebSocketConstructor, isNodeWs: false };
    const mod = await import("ws");
    return { ctor: mod.WebSocket as unknown as WebSocketConstructor, isNodeWs: true };
  })();
  return factory;
}

export interface SocketHandlers {
  /** One binary frame. Text frames are reported as errors (the protocol is binary only). */
  onFrame(data: Uint8Array): void;
  /** Called once, when the socket closed for any reason after it opened. */
  onClose(reason: string): void;
}

export interface ClientSocket {
  readonly url: string;
  send(data: Uint8Array): void;
  /** Closes at once: handlers get no more calls (the caller already knows the socket is gone). */
  destroy(): void;
}

/** Opens a socket; rejects when it does not open within timeoutMs. */
export async function openSocket(url: string, timeoutMs: number, handlers: SocketHandlers): Promise<ClientSocket> {
  const { ctor, isNodeWs } = await webSocketFactory();
  return new Promise<ClientSocket>((resolve, reject) => {
    let ws: WebSocketLike;
    try {
      ws = isNodeWs ? new ctor(url, undefined, { maxPayload: PROTOCOL_LIMITS.frameBytesMax }) : new ctor(url);
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    ws.binaryType = "arraybuffer";
    let opened = false;
    let done = false;
    const teardown = (): void => {
      clearTimeout(timer);
      ws.onopen = ws.onmessage = ws.onclose = null;
      // Closing a socket that is still connecting makes `ws` emit an error later: keep a listener.
      ws.onerror = () => undefined;
      try {
        if (ws.terminate) ws.terminate();
        else ws.close();
      } catch {
        // Already closed.
      }
    };
    // Exactly one of: resolve then (maybe) onClose, or reject. Never a handler call after destroy().
    const finish = (reason: string): void => {
      if (done) return;
      done = true;
      teardown();
      if (opened) handlers.onClose(reason);
      else reject(new Error(`cannot connect to ${url}: ${reason}`));
    };
    const timer = setTimeout(() => finish(`timeout after ${timeoutMs} ms`), timeoutMs);
    ws.onopen = () => {
      opened = true;
      clearTimeout(timer);
      resolve({
        url,
        send: (data) => ws.send(data),
        destroy: () => {
          if (done) return;
          done = true;
          teardown();
        },
      });
    };
    ws.onmessage = (event) => {
      const data = event.data;
      if (data instanceof ArrayBuffer) handlers.onFrame(new Uint8Array(data));
      else if (ArrayBuffer.isView(data)) handlers.onFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      else finish("protocol error: text frame");
    };
    ws.onerror = (event) => {
      finish(event.message ?? (event.error instanceof Error ? event.error.message : "socket error"));
    };
    ws.onclose = (event) => finish(`closed${event.code ? ` (${event.code}${event.reason ? ` ${event.reason}` : ""})` : ""}`);
  });
}
