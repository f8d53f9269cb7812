/**
 * The Squonk2 Account Server API for TypeScript: the operation table and the client that calls
 * it. Knows nothing of MCP.
 *
 * @example
 * ```ts
 * import { AsApi } from "./mod.ts";
 * const api = new AsApi(); // SQUONK2_ASAPI_URL, SQUONK2_ASAPI_VERIFY_SSL_CERT
 * const rv = await api.call("get_version", {});
 * ```
 *
 * @module
 */
export {
  type ApiRv,
  AsApi,
  type AsApiOptions,
  type CallOptions,
  checkApiUrl,
  type CheckedCall,
  DEFAULT_TIMEOUT_S,
} from "./client.ts";
export {
  findOperation,
  type Kind,
  type Method,
  type Operation,
  type OperationName,
  OPERATIONS,
  type ParamsOf,
  pathParams,
  type Toolset,
  TOOLSETS,
} from "./operations.ts";
export { type Checked, type CheckOptions, checkParams, nearestName } from "./check.ts";
export { AS_ID_PATTERN, ASSET_NAME_PATTERN, ENUMS } from "./params.ts";
export type { FailureReason, NoResponseReason } from "./_failure.ts";
