/**
 * How the scenario transcripts print messages, entries, node status and durable logs. The format is
 * what the golden files pin down: change it only together with them.
 */
import { decodeConfChange } from "../../src/raft/index.ts";
import type { Entry, Message } from "../../src/raft/types.ts";
import type { SimNode } from "./node.ts";
import { describeData } from "./state-machine.ts";

const decoder = new TextDecoder();

export function describeEntry(entry: Entry): string {
  if (entry.type === "conf") {
    const change = decodeConfChange(entry.data);
    return `conf ${change.type} ${change.nodeId}`;
  }
  return describeData(entry);
}

function context(bytes: Uint8Array | undefined): string {
  if (bytes === undefined || bytes.length === 0) return "";
  const text = decoder.decode(bytes);
  return /^[\x20-\x7e]+$/.test(text) ? ` ctx=${text}` : ` ctx=0x${Buffer.from(bytes).toString("hex")}`;
}

export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case "app": {
      const entries = m.entries.map((e) => `${e.term}/${e.index} ${describeEntry(e)}`).join(", ");
      return `${head} log=${m.logTerm}/${m.index} commit=${m.commit}${entries === "" ? "" : ` entries=[${entries}]`}`;
    }
    case "appResp":
      return m.reject ? `${head} reject index=${m.index} hint=${m.rejectHint} logTerm=${m.logTerm}` : `${head} index=${m.index}`;
    case "heartbeat":
      return `${head} commit=${m.commit}${context(m.context)}`;
    case "heartbeatResp":
    case "readIndex":
      return `${head}${context(m.context)}`;
    case "readIndexResp":
      return `${head} index=${m.index}${context(m.context)}`;
    case "vote":
    case "preVote":
      return `${head} last=${m.logTerm}/${m.index}${context(m.context)}`;
    case "voteResp":
    case "preVoteResp":
      return `${head} ${m.reject ? "rejected" : "granted"}`;
    case "snap": {
      const meta = m.snapshot?.metadata;
      return `${head} snapshot=${meta?.term}/${meta?.index} voters=[${meta?.confState.voters.join(",") ?? ""}]`;
    }
    case "timeoutNow":
      return head;
  }
}

export function describeNode(node: SimNode): string {
  const s = node.status();
  if (s === null) return `${node.id}: down`;
  const learners = s.confState.learners.length > 0 ? ` learners=[${s.confState.learners.join(",")}]` : "";
  return `${node.id}: ${s.role} term=${s.term} leader=${s.leader ?? "-"} commit=${s.commit} applied=${node.machine.applied} last=${s.lastIndex} voters=[${s.confState.voters.join(",")}]${learners}`;
}

export function describeLog(node: SimNode): string[] {
  const image = node.disk.durable;
  const lines = [`  ${node.id} durable: term=${image.hardState.term} vote=${image.hardState.vote ?? "-"} commit=${image.hardState.commit} snapshot=${image.snapshot.metadata.term}/${image.snapshot.metadata.index}`];
  for (const entry of image.entries) lines.push(`  ${entry.term}/${entry.index} ${describeEntry(entry)}`);
  return lines;
}
