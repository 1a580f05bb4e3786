/**
 * The package root (`import { connect, Kvm, CairnError, startNode, startCluster } from "cairn"`): a
 * curated barrel, apart from internals.
 */
export { connect, Connection, Kvm } from "./client/index.ts";
export type * from "./client/types.ts";
export { CairnError, ErrorCodes, type ErrorCode, type ErrorData } from "./shared/errors.ts";
// TODO(node): enable once src/node/embed.ts exports startNode and startCluster.
// export { startNode, startCluster } from "./node/embed.ts";
