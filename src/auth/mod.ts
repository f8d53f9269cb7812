/**
 * Credentials for the Account Server, usable without MCP (like the Python package's
 * `squonk2.auth`): a static token, or Keycloak's password or client-credentials grant, cached and
 * renewed. Depends on `api/`, never the other way.
 *
 * @example
 * ```ts
 * import { KeycloakTokens } from "./mod.ts";
 * const tokens = new KeycloakTokens({ url, realm, clientId, username, password });
 * const rv = await api.call("get_account", {}, { token: await tokens.getToken() });
 * ```
 *
 * @module
 */
export {
  CredentialsError,
  type CredentialsFailure,
  type KeycloakOptions,
  KeycloakTokens,
  NoCredentials,
  StaticToken,
  type TokenSource,
  type TokenWait,
} from "./tokens.ts";
export {
  type Caller,
  InvalidToken,
  TokenVerifier,
  type VerifierOptions,
  VerifierUnavailable,
} from "./verify.ts";
