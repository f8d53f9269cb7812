/**
 * The MCP face of the project: the server built from the operation table, its transports, the
 * sources of its access tokens and the tool selection. Depends on `api/`, never the other way.
 *
 * @module
 */
export { createServer, INSTRUCTIONS, MAX_TIMEOUT_S, type ServerOptions } from "./server.ts";
export {
  annotationsFor,
  type CallContext,
  localTool,
  type LocalToolDefinition,
  type Prepared,
  type Tool,
} from "./tool.ts";
export { Activity } from "./activity.ts";
export { credentialsResult, type ResultOptions, toolResult } from "./result.ts";
export { credentialsHint, type HintContext, hintFor } from "./hints.ts";
export { API_RV_SHAPE, listTools, withoutMentions } from "./listing.ts";
export { type HttpEndpoint, type HttpOptions, isLoopback, serveHttp } from "./http.ts";
export { accountServerAnswers, type ResourceOptions } from "./_resource.ts";
export { ALL_TOOLS, SelectionError, selectTools, type ToolSelection } from "./selection.ts";
export { checkFileRoot, resolveUpload } from "./files.ts";
export { cleanText, cleanValue, mayHideText } from "./sanitize.ts";
export { MAX_LINE_BYTES, StdioTransport } from "./stdio.ts";
