/**
 * The package root (`import { connect, Kvm, CairnError, startNode, startCluster } from "cairn"`): a
 * curated barrel, apart from internals.
 */
export { connect, Connection, Kvm } from "./client/index.ts";
export type * from "./client/types.ts";
export { CairnError, ErrorCodes, type ErrorCode, type ErrorData } from "./shared/errors.ts";
export { startNode, startCluster } from "./node/embed.ts";
export type { StartNodeOptions, RunningNode, StartClusterOptions, InProcessCluster } from "./node/embed.ts";
