/**
 * The hint a failed tool result carries: chosen by the failure's cause (a status, a reason from
 * the client, a credentials failure), never by parsing the error's words, and naming only tools
 * the server offers.
 *
 * @module
 */
import { type ApiRv, type NoResponseReason, type Operation, OPERATIONS } from "../api/mod.ts";
import type { CredentialsError } from "../auth/mod.ts";
import { ALL_TOOLS } from "./selection.ts";

/** What a hint is chosen from, besides the ApiRv. */
export interface HintContext {
  /** The tools this server offers: a hint names no other (default: every tool). */
  offered?: ReadonlySet<string>;
  /** The operation called: a change that got no answer says how to check whether it applied. */
  row?: Operation;
  /** The call carried the caller's own token (HTTP), not the operator's credentials. */
  callerToken?: boolean;
  /** The operator's token source gets a new token after one is refused (Keycloak). */
  renewable?: boolean;
}

/** For a 404: each id parameter, and the tool that lists what exists of its kind. */
const LISTED_BY: Readonly<Record<string, string>> = {
  org_id: "get_organisations",
  unit_id: "get_available_units",
  product_id: "get_available_products",
  asset_id: "get_available_assets",
  merchant_id: "get_merchants",
};

/** Reasons after which a change may have reached the Account Server and been applied. */
const MAY_HAVE_APPLIED: ReadonlySet<string> = new Set([
  "timeout",
  "dropped",
  "network",
  "cancelled",
]);

/** Statuses from a gateway that may have passed a change on before failing. */
const GATEWAY_STATUSES: ReadonlySet<number> = new Set([502, 504]);

const LARGER_TIMEOUT = "a larger timeout_s may help";

/** What to say about the Account Server when no answer came, by reason (reads, or no change). */
const NO_ANSWER: Readonly<Record<NoResponseReason, string>> = {
  timeout:
    `The Account Server did not answer within timeout_s: it may be slow or busy; ${LARGER_TIMEOUT}`,
  refused:
    "Nothing is listening at the Account Server URL (connection refused): the Account Server is not running there or the URL is wrong; waiting will not help: the operator must start it or fix SQUONK2_ASAPI_URL",
  dns:
    "The Account Server's host name does not resolve: the operator must check SQUONK2_ASAPI_URL (or the DNS); waiting will not help",
  tls:
    "The Account Server's TLS certificate is not trusted: the operator must make it trusted, or set SQUONK2_ASAPI_VERIFY_SSL_CERT=no if they trust this server; waiting will not help",
  dropped:
    "The connection closed before the answer was complete: the tool only reads, so calling it again is safe",
  network:
    "The request failed before the Account Server answered: the tool only reads, so calling it again is safe",
};

/** The hint for a failed ApiRv, or undefined when there is nothing useful to add. */
export function hintFor(rv: ApiRv, context: HintContext = {}): string | undefined {
  const offers = offering(context);
  const row = context.row;
  const change = row?.kind !== "read";
  if (rv.http_status_code === 0) {
    const reason = rv.reason;
    if (reason === undefined || reason === "cancelled") return undefined;
    if (reason === "invalid") return "Nothing was sent: fix the argument the error names";
    if (reason === "no_url") return "The operator must set SQUONK2_ASAPI_URL";
    if (change && MAY_HAVE_APPLIED.has(reason)) {
      if (row) return mayHaveApplied(row, reason, offers);
      return UNKNOWN_CHANGE + (reason === "timeout" ? `; ${LARGER_TIMEOUT}` : "");
    }
    return NO_ANSWER[reason];
  }
  if (row && change && GATEWAY_STATUSES.has(rv.http_status_code)) {
    return mayHaveApplied(row, "gateway", offers);
  }
  if (rv.http_status_code === 401 && !context.callerToken && context.renewable && change) {
    return RENEWED;
  }
  return statusHint(rv.http_status_code, context.callerToken ?? false, offers, row);
}

const RENEWED =
  "The Account Server refused this server's access token, so nothing was applied: the next call gets a new token from Keycloak, so calling again is safe";

const UNKNOWN_CHANGE =
  "No complete answer came: if the call was a change, it may have been applied; check before calling it again";

function offering(context: HintContext): (tool: string) => boolean {
  return (tool) => context.offered?.has(tool) ?? ALL_TOOLS.has(tool);
}

function mayHaveApplied(
  row: Operation,
  reason: string,
  offers: (tool: string) => boolean,
): string {
  const cause = reason === "timeout"
    ? "no answer came in time"
    : reason === "gateway"
    ? "a gateway failed on the way back"
    : "the answer was lost";
  const check = row.shownBy && offers(row.shownBy)
    ? `check with ${row.shownBy} whether it was`
    : "check whether it was";
  const timeout = reason === "timeout" ? `; ${LARGER_TIMEOUT}` : "";
  return `${row.name} may have been applied although ${cause}: before calling it again, ${check}${timeout}`;
}

/** The tools that list what the row's ids name (every such tool when the row is unknown). */
function listToolsFor(row: Operation | undefined): string[] {
  const ids = row ? Object.keys(row.params).filter((p) => p in LISTED_BY) : [];
  return ids.length ? ids.map((id) => LISTED_BY[id]!) : Object.values(LISTED_BY);
}

function statusHint(
  status: number,
  callerToken: boolean,
  offers: (tool: string) => boolean,
  row: Operation | undefined,
): string | undefined {
  switch (status) {
    case 400:
      return "The Account Server refused the request as invalid: read the error and fix the arguments";
    case 401:
      return callerToken
        ? "The Account Server refused your access token (the bearer token of this HTTP request): it is missing, invalid or expired; get a new one. This server's own credentials were not used"
        : "The Account Server refused this server's access token (missing, invalid or expired): the operator must fix the server's credentials";
    case 403:
      return "The caller is not a member of that Organisation or Unit, or not an admin" +
        (offers("get_account") ? " (see get_account)" : "");
    case 404: {
      const lists = listToolsFor(row).filter(offers);
      return lists.length
        ? `Nothing has that id: list what exists first (${lists.join(", ")})`
        : "Nothing has that id: check it";
    }
    default:
      return undefined;
  }
}

/** The hint for a call that failed because no token could be had. */
export function credentialsHint(error: CredentialsError, context: HintContext = {}): string {
  const offers = offering(context);
  switch (error.kind) {
    case "none": {
      const free = OPERATIONS.filter((o) => !o.token && offers(o.name)).map((o) => o.name);
      return "This server has no Account Server credentials, so only tools that need no token work" +
        (free.length ? ` (${free.join(", ")})` : "") + "; the operator must configure them";
    }
    case "rejected":
      return "Keycloak refused this server's credentials (wrong user, password or client secret): the operator must fix the SQUONK2_KEYCLOAK_* settings; calling again will not help";
    case "not_found":
      return "Keycloak has no token URL there (wrong URL or realm): the operator must fix SQUONK2_KEYCLOAK_URL or SQUONK2_KEYCLOAK_REALM; calling again will not help";
    case "redirected":
      return "Keycloak's token URL answers with a redirect, which is not followed (http:// for https:// is a common cause): the operator must fix SQUONK2_KEYCLOAK_URL; calling again will not help";
    case "unreachable":
      return keycloakUnreachable(error.network ?? "network");
    case "failed":
      return "Keycloak answered without a usable token, so nothing was sent to the Account Server: try again later; if it persists, the operator must check Keycloak";
  }
}

function keycloakUnreachable(reason: NoResponseReason): string {
  switch (reason) {
    case "timeout":
      return `Keycloak did not answer in time, so nothing was sent to the Account Server: try again later; ${LARGER_TIMEOUT}`;
    case "refused":
      return "Nothing is listening at the Keycloak URL (connection refused): Keycloak is not running there or SQUONK2_KEYCLOAK_URL is wrong; waiting will not help";
    case "dns":
      return "Keycloak's host name does not resolve: the operator must check SQUONK2_KEYCLOAK_URL (or the DNS); waiting will not help";
    case "tls":
      return "Keycloak's TLS certificate is not trusted: the operator must make it trusted, or set SQUONK2_ASAPI_VERIFY_SSL_CERT=no if they trust it; waiting will not help";
    default:
      return "Keycloak could not be reached, so nothing was sent to the Account Server: try again later";
  }
}

/** Whether the operator, not the caller, must act: such failures are also logged to stderr. */
export function operatorMustAct(rv: ApiRv, context: HintContext): boolean {
  if (rv.http_status_code === 401) {
    return !context.callerToken && !(context.renewable && context.row?.kind !== "read");
  }
  return rv.http_status_code === 0 &&
    (rv.reason === "refused" || rv.reason === "dns" || rv.reason === "tls" ||
      rv.reason === "no_url");
}
