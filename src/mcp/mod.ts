/**
 * The MCP face of the project: the server built from the operation table, and the sources of
 * its access tokens. Depends on `api/`, never the other way round.
 *
 * @module
 */
export {
  annotationsFor,
  API_RV_SHAPE,
  createServer,
  INSTRUCTIONS,
  MAX_TIMEOUT_S,
  type ServerOptions,
  toolResult,
} from "./server.ts";
export {
  CredentialsError,
  type KeycloakOptions,
  KeycloakTokens,
  NoCredentials,
  StaticToken,
  type TokenSource,
} from "./credentials.ts";
