/**
 * The MCP face of the project: the server built from the operation table, its transports and
 * the tool selection. Depends on `api/` and `auth/`, never the other way.
 *
 * @module
 */
export { createServer, type ServerOptions } from "./server.ts";
export {
  type CallContext,
  localTool,
  type LocalToolDefinition,
  type Prepared,
  type Tool,
} from "./tool.ts";
export { Activity } from "./activity.ts";
export { type HttpEndpoint, type HttpOptions, isLoopback, serveHttp } from "./http.ts";
export { accountServerAnswers, type ResourceOptions } from "./_resource.ts";
export { ALL_TOOLS, SelectionError, selectTools, type ToolSelection } from "./selection.ts";
export { checkFileRoot } from "./files.ts";
export { StdioTransport } from "./stdio.ts";
