/**
 * The operation table: every Account Server operation as one row of data. The client builds
 * requests from it, the MCP server derives its tools from it and the stub derives its routes from
 * it. Adding an operation is one row here, one route in the stub and one test.
 *
 * @module
 */
import { z } from "zod";
import {
  asId,
  assetName,
  billingDay,
  chargeWindow,
  coins,
  date,
  ENUMS,
  name,
  oneOf,
  positiveId,
  SCOPE_ID_PATTERN,
  text,
  username,
} from "./params.ts";

/** What an operation does to the Account Server's state. */
export type Kind = "read" | "create" | "update" | "delete";

/** The named groups of tools an operator can choose from. */
export const TOOLSETS = [
  "organisations",
  "units",
  "products",
  "assets",
  "users",
  "merchants",
  "charges",
  "event_streams",
  "server",
] as const;

/** One of the named groups of tools. */
export type Toolset = (typeof TOOLSETS)[number];

/** The HTTP methods the Account Server uses. */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** The parameters of a call, after validation. */
export type Params = Record<string, unknown>;

/**
 * Where a body field's value comes from: a parameter's name, or a parameter sent only when it is
 * greater than zero, or a parameter whose value is a path to a file whose bytes are sent.
 */
export type BodySource = string | { param: string; when: "positive" } | {
  param: string;
  file: true;
};

/** One row of the table. */
export interface Operation<N extends string = string, S extends z.ZodRawShape = z.ZodRawShape> {
  /** The name of the Python client's method, and of the MCP tool. */
  readonly name: N;
  /** The group of tools it belongs to. */
  readonly toolset: Toolset;
  readonly method: Method;
  /** The path below the base URL, with `{param}` for path parameters. */
  readonly path: string;
  /** Whether the request carries `Authorization: Bearer <token>`. */
  readonly token: boolean;
  /** The parameters, each with `.describe()`. */
  readonly params: S;
  /** Query key to parameter name, or a function for the one operation whose key varies. */
  readonly query?: Readonly<Record<string, string>> | ((params: Params) => Record<string, string>);
  /** Body field to where its value comes from; absent values are left out. */
  readonly body?: Readonly<Record<string, BodySource>>;
  readonly encoding?: "json" | "multipart";
  /**
   * Another operation that sends this one's very request (octokit's aliases): always, or only when
   * none of the query keys `unlessQuery` is sent. No server can tell the two apart, so such a
   * request counts as the other operation's (in the stub's log and its faults).
   */
  readonly sameRequestAs?: { readonly operation: string; readonly unlessQuery?: readonly string[] };
  /** A rule across parameters: the message when it is broken, or undefined. */
  readonly check?: (params: Params) => string | undefined;
  /** The HTTP statuses that mean success. */
  readonly success: readonly number[];
  readonly kind: Kind;
  /** A change's read operation, which shows whether a change that got no answer was applied. */
  readonly shownBy?: string;
  readonly title: string;
  /** For a model that has never heard of Squonk2: what it does and who may call it. */
  readonly description: string;
}

function op<const N extends string, S extends z.ZodRawShape = Record<never, never>>(
  row: Omit<Operation<N, S>, "params"> & { params?: S },
): Operation<N, S> {
  return { ...row, params: row.params ?? ({} as S) };
}

const orgId = asId("org", "Organisation id");
const unitId = asId("unit", "Unit id");
const productId = asId("product", "Product id");
const assetId = asId("asset", "Asset id");
const merchantId = positiveId("Merchant id (an integer, see get_merchants)");
const member = username("Username of the user");
const privacy = oneOf(
  ENUMS.DefaultProductPrivacy,
  "Default privacy of Products created below it",
);
const contentString = z.string({ error: "must be a string" }).max(1_000_000, {
  error: "must be at most 1000000 characters",
});

const ASSET_QUERY_KEYS: Readonly<Record<string, string>> = {
  product: "product_id",
  unit: "unit_id",
  org: "org_id",
};

/**
 * Picks `product_id`, `unit_id` or `org_id` for a full id of that kind (prefix and lowercase
 * UUID); anything else is a username, sent as `user_id`, as the Python client does.
 */
function assetScopeQuery(params: Params): Record<string, string> {
  const scopeId = params.scope_id;
  if (typeof scopeId !== "string") return {};
  const kind = SCOPE_ID_PATTERN.exec(scopeId)?.[1];
  return { [kind ? ASSET_QUERY_KEYS[kind]! : "user_id"]: scopeId };
}

function oneContent(params: Params): string | undefined {
  const given = ["content_string", "content_file"].filter((k) => params[k] !== undefined);
  return given.length === 1
    ? undefined
    : `content_string, content_file: give exactly one of the two (${given.length} given)`;
}

function assetScopeId(params: Params): string | undefined {
  const missing = oneContent(params);
  if (missing) return missing;
  if (params.scope === "GLOBAL" && params.scope_id !== undefined) {
    return 'scope_id: must be left out when scope is "GLOBAL"';
  }
  if (params.scope !== "GLOBAL" && params.scope_id === undefined) {
    return `scope_id: is required when scope is "${params.scope}"`;
  }
  return undefined;
}

function notBothContents(params: Params): string | undefined {
  return params.content_string !== undefined && params.content_file !== undefined
    ? "content_string, content_file: give at most one of the two"
    : undefined;
}

const UPLOAD_NOTE = "Only inside the upload folder the operator set (SQUONK2_MCP_FILE_ROOT), " +
  "relative to it; else use content_string.";

const CHARGES_QUERY = { from: "from", until: "until", pbp: "pbp" } as const;
const CHARGES_NOTE = "Coins are per billing period; without from/until/pbp the current period.";

/** All operations, in the order of `operations.json`. */
export const OPERATIONS = [
  op({
    name: "ping",
    toolset: "server",
    method: "GET",
    path: "/version",
    token: false,
    sameRequestAs: { operation: "get_version" },
    success: [200],
    kind: "read",
    title: "Ping the Account Server",
    description: "Checks that the Account Server answers. Needs no credentials.",
  }),
  op({
    name: "get_version",
    toolset: "server",
    method: "GET",
    path: "/version",
    token: false,
    success: [200],
    kind: "read",
    title: "Get Account Server version",
    description: "Returns the Account Server's version. Needs no credentials.",
  }),
  op({
    name: "get_event_stream_version",
    toolset: "event_streams",
    method: "GET",
    path: "/event-stream/version",
    token: false,
    success: [200],
    kind: "read",
    title: "Get event stream service version",
    description:
      "Returns the installed event stream service's version, name and protocol. Needs no credentials.",
  }),
  op({
    name: "get_account",
    toolset: "users",
    method: "GET",
    path: "/user/account",
    token: true,
    success: [200],
    kind: "read",
    title: "Get my account",
    description: "Returns the caller's username, Account Server roles and whether they are admin.",
  }),
  op({
    name: "get_merchants",
    toolset: "merchants",
    method: "GET",
    path: "/merchant",
    token: true,
    success: [200],
    kind: "read",
    title: "List merchants",
    description:
      "Lists the Merchants: services (e.g. a Data Manager) whose use is charged to Products.",
  }),
  op({
    name: "get_merchant",
    toolset: "merchants",
    method: "GET",
    path: "/merchant/{merchant_id}",
    token: true,
    params: { merchant_id: merchantId },
    success: [200],
    kind: "read",
    title: "Get merchant",
    description: "Returns one Merchant by its integer id.",
  }),
  op({
    name: "get_organisations",
    toolset: "organisations",
    method: "GET",
    path: "/organisation",
    token: true,
    params: { org_name: name("Return only the Organisation with this exact name").optional() },
    query: { name: "org_name" },
    success: [200],
    kind: "read",
    title: "List organisations",
    description: "Lists the Organisations the caller is a member of (all of them for an admin).",
  }),
  op({
    name: "get_organisation",
    toolset: "organisations",
    method: "GET",
    path: "/organisation/{org_id}",
    token: true,
    params: { org_id: orgId },
    success: [200],
    kind: "read",
    title: "Get organisation",
    description: "Returns an Organisation and its users. Members, its creator and admins only.",
  }),
  op({
    name: "get_default_organisation",
    toolset: "organisations",
    method: "GET",
    path: "/default/organisation",
    token: true,
    success: [200],
    kind: "read",
    title: "Get default organisation",
    description: "Returns the built-in Default Organisation, which holds every Personal Unit.",
  }),
  op({
    name: "create_organisation",
    toolset: "organisations",
    method: "POST",
    path: "/organisation",
    token: true,
    params: {
      org_name: name("Name of the new Organisation (unique)"),
      org_owner: username("Username of the Organisation's owner"),
    },
    body: { name: "org_name", owner: "org_owner" },
    encoding: "json",
    success: [201],
    kind: "create",
    shownBy: "get_organisations",
    title: "Create organisation",
    description: "Creates an Organisation and returns its id. Admins only.",
  }),
  op({
    name: "alter_organisation",
    toolset: "organisations",
    method: "PATCH",
    path: "/organisation/{org_id}",
    token: true,
    params: {
      org_id: orgId,
      name: name("New name").optional(),
      default_product_privacy: privacy.optional(),
    },
    body: { name: "name", default_product_privacy: "default_product_privacy" },
    encoding: "json",
    success: [200],
    kind: "update",
    shownBy: "get_organisation",
    title: "Alter organisation",
    description: "Renames an Organisation or changes its default Product privacy. Members, admins.",
  }),
  op({
    name: "delete_organisation",
    toolset: "organisations",
    method: "DELETE",
    path: "/organisation/{org_id}",
    token: true,
    params: { org_id: orgId },
    success: [204],
    kind: "delete",
    shownBy: "get_organisations",
    title: "Delete organisation",
    description: "Deletes an Organisation that has no Units left. Admins only.",
  }),
  op({
    name: "get_organisation_units",
    toolset: "organisations",
    method: "GET",
    path: "/organisation/{org_id}/unit",
    token: true,
    params: { org_id: orgId },
    success: [200],
    kind: "read",
    title: "List organisation units",
    description: "Lists an Organisation's Units that the caller may see.",
  }),
  op({
    name: "get_organisation_users",
    toolset: "users",
    method: "GET",
    path: "/organisation/{org_id}/user",
    token: true,
    params: { org_id: orgId },
    success: [200],
    kind: "read",
    title: "List organisation users",
    description: "Lists the members of an Organisation. Members and admins.",
  }),
  op({
    name: "add_user_to_organisation",
    toolset: "users",
    method: "PUT",
    path: "/organisation/{org_id}/user/{username}",
    token: true,
    params: { org_id: orgId, username: member },
    success: [200, 201],
    kind: "update",
    shownBy: "get_organisation_users",
    title: "Add user to organisation",
    description: "Makes a user a member of an Organisation. Members and admins.",
  }),
  op({
    name: "remove_user_from_organisation",
    toolset: "users",
    method: "DELETE",
    path: "/organisation/{org_id}/user/{username}",
    token: true,
    params: { org_id: orgId, username: member },
    success: [204],
    kind: "delete",
    shownBy: "get_organisation_users",
    title: "Remove user from organisation",
    description: "Removes a member from an Organisation. Members and admins.",
  }),
  op({
    name: "get_organisation_charges",
    toolset: "charges",
    method: "GET",
    path: "/charges/organisation/{org_id}",
    token: true,
    params: { org_id: orgId, ...chargeWindow() },
    query: CHARGES_QUERY,
    success: [200],
    kind: "read",
    title: "Get organisation charges",
    description: `Returns an Organisation's charges, summed per Unit. ${CHARGES_NOTE}`,
  }),
  op({
    name: "get_available_units",
    toolset: "units",
    method: "GET",
    path: "/unit",
    token: true,
    success: [200],
    kind: "read",
    title: "List available units",
    description:
      "Lists every Unit the caller may see, grouped by Organisation. To find Units by name, use get_units.",
  }),
  op({
    name: "get_units",
    toolset: "units",
    method: "GET",
    path: "/unit",
    token: true,
    params: { unit_name: name("Return only Units with this exact name").optional() },
    query: { name: "unit_name" },
    sameRequestAs: { operation: "get_available_units", unlessQuery: ["name"] },
    success: [200],
    kind: "read",
    title: "List units",
    description:
      "Finds the Units with a given unit_name that the caller may see, grouped by Organisation. Without unit_name it is get_available_units.",
  }),
  op({
    name: "get_unit",
    toolset: "units",
    method: "GET",
    path: "/unit/{unit_id}",
    token: true,
    params: { unit_id: unitId },
    success: [200],
    kind: "read",
    title: "Get unit",
    description: "Returns a Unit and its users. Unit or Organisation members and admins.",
  }),
  op({
    name: "create_unit",
    toolset: "units",
    method: "POST",
    path: "/organisation/{org_id}/unit",
    token: true,
    params: {
      unit_name: name("Name of the new Unit"),
      org_id: orgId,
      billing_day: billingDay(),
    },
    body: { name: "unit_name", billing_day: "billing_day" },
    encoding: "json",
    success: [201],
    kind: "create",
    shownBy: "get_organisation_units",
    title: "Create unit",
    description: "Creates a Unit in an Organisation and returns its id. Organisation members.",
  }),
  op({
    name: "alter_unit",
    toolset: "units",
    method: "PATCH",
    path: "/unit/{unit_id}",
    token: true,
    params: {
      unit_id: unitId,
      name: name("New name").optional(),
      default_product_privacy: privacy.optional(),
    },
    body: { name: "name", default_product_privacy: "default_product_privacy" },
    encoding: "json",
    success: [200],
    kind: "update",
    shownBy: "get_unit",
    title: "Alter unit",
    description: "Renames a Unit or changes its default Product privacy. Members and admins.",
  }),
  op({
    name: "delete_unit",
    toolset: "units",
    method: "DELETE",
    path: "/unit/{unit_id}",
    token: true,
    params: { unit_id: unitId },
    success: [204],
    kind: "delete",
    shownBy: "get_unit",
    title: "Delete unit",
    description: "Deletes a Unit that has no Products left. Unit or Organisation members, admins.",
  }),
  op({
    name: "get_unit_users",
    toolset: "users",
    method: "GET",
    path: "/unit/{unit_id}/user",
    token: true,
    params: { unit_id: unitId },
    success: [200],
    kind: "read",
    title: "List unit users",
    description: "Lists the members of a Unit.",
  }),
  op({
    name: "add_user_to_unit",
    toolset: "users",
    method: "PUT",
    path: "/unit/{unit_id}/user/{username}",
    token: true,
    params: { unit_id: unitId, username: member },
    success: [200, 201],
    kind: "update",
    shownBy: "get_unit_users",
    title: "Add user to unit",
    description: "Makes a user a member of a Unit. Unit or Organisation members and admins.",
  }),
  op({
    name: "remove_user_from_unit",
    toolset: "users",
    method: "DELETE",
    path: "/unit/{unit_id}/user/{username}",
    token: true,
    params: { unit_id: unitId, username: member },
    success: [204],
    kind: "delete",
    shownBy: "get_unit_users",
    title: "Remove user from unit",
    description: "Removes a member from a Unit. Unit or Organisation members and admins.",
  }),
  op({
    name: "get_unit_charges",
    toolset: "charges",
    method: "GET",
    path: "/charges/unit/{unit_id}",
    token: true,
    params: { unit_id: unitId, ...chargeWindow() },
    query: CHARGES_QUERY,
    success: [200],
    kind: "read",
    title: "Get unit charges",
    description: `Returns a Unit's charges, summed per Product. ${CHARGES_NOTE}`,
  }),
  op({
    name: "get_personal_unit",
    toolset: "units",
    method: "GET",
    path: "/personal-unit",
    token: true,
    success: [200],
    kind: "read",
    title: "Get my personal unit",
    description: "Returns the caller's Personal Unit; 404 when they have none.",
  }),
  op({
    name: "create_personal_unit",
    toolset: "units",
    method: "PUT",
    path: "/personal-unit",
    token: true,
    params: { billing_day: billingDay() },
    body: { billing_day: "billing_day" },
    encoding: "json",
    success: [201],
    kind: "create",
    shownBy: "get_personal_unit",
    title: "Create my personal unit",
    description: "Creates the caller's Personal Unit in the Default Organisation.",
  }),
  op({
    name: "delete_personal_unit",
    toolset: "units",
    method: "DELETE",
    path: "/personal-unit",
    token: true,
    success: [204],
    kind: "delete",
    shownBy: "get_personal_unit",
    title: "Delete my personal unit",
    description: "Deletes the caller's Personal Unit (it must have no Products).",
  }),
  op({
    name: "get_available_products",
    toolset: "products",
    method: "GET",
    path: "/product",
    token: true,
    success: [200],
    kind: "read",
    title: "List available products",
    description: "Lists the Products (subscriptions) the caller may see, across all Units.",
  }),
  op({
    name: "get_product",
    toolset: "products",
    method: "GET",
    path: "/product/{product_id}",
    token: true,
    params: { product_id: productId },
    success: [200],
    kind: "read",
    title: "Get product",
    description: "Returns a Product with its Unit, Organisation, coins and storage use.",
  }),
  op({
    name: "get_products_for_unit",
    toolset: "products",
    method: "GET",
    path: "/product/unit/{unit_id}",
    token: true,
    params: { unit_id: unitId },
    success: [200],
    kind: "read",
    title: "List unit products",
    description: "Lists the Products of a Unit.",
  }),
  op({
    name: "get_products_for_organisation",
    toolset: "products",
    method: "GET",
    path: "/product/organisation/{org_id}",
    token: true,
    params: { org_id: orgId },
    success: [200],
    kind: "read",
    title: "List organisation products",
    description: "Lists the Products of every Unit of an Organisation.",
  }),
  op({
    name: "get_product_types",
    toolset: "products",
    method: "GET",
    path: "/product-type",
    token: true,
    success: [200],
    kind: "read",
    title: "List product types",
    description: "Lists the Product types (and flavours) that can be subscribed to.",
  }),
  op({
    name: "get_product_default_storage_cost",
    toolset: "products",
    method: "GET",
    path: "/product-default-storage-cost",
    token: true,
    success: [200],
    kind: "read",
    title: "Get default storage cost",
    description: "Returns the default storage cost in coins and its units.",
  }),
  op({
    name: "create_product",
    toolset: "products",
    method: "POST",
    path: "/product/unit/{unit_id}",
    token: true,
    params: {
      product_name: name("Name of the new Product"),
      unit_id: unitId,
      product_type: oneOf(ENUMS.ProductType, "Product type, see get_product_types"),
      allowance: coins("Coin allowance per billing period (storage subscriptions)").optional(),
      limit: coins("Coin limit per billing period (storage subscriptions)").optional(),
      flavour: oneOf(ENUMS.Flavour, "Flavour (project-tier subscriptions only)").optional(),
    },
    body: {
      name: "product_name",
      type: "product_type",
      flavour: "flavour",
      allowance: { param: "allowance", when: "positive" },
      limit: { param: "limit", when: "positive" },
    },
    encoding: "json",
    success: [201],
    kind: "create",
    shownBy: "get_products_for_unit",
    title: "Create product",
    description:
      "Subscribes a Unit to a Product and returns its id. Storage subscriptions take an allowance and limit, project-tier ones a flavour. Unit or Organisation members.",
  }),
  op({
    name: "alter_product",
    toolset: "products",
    method: "PATCH",
    path: "/product/{product_id}",
    token: true,
    params: {
      product_id: productId,
      product_name: name("New name").optional(),
      allowance: coins("New coin allowance per billing period").optional(),
      limit: coins("New coin limit per billing period").optional(),
    },
    body: { name: "product_name", allowance: "allowance", limit: "limit" },
    encoding: "json",
    success: [200],
    kind: "update",
    shownBy: "get_product",
    title: "Alter product",
    description: "Renames a Product or changes its coin allowance or limit.",
  }),
  op({
    name: "delete_product",
    toolset: "products",
    method: "DELETE",
    path: "/product/{product_id}",
    token: true,
    params: { product_id: productId },
    success: [204],
    kind: "delete",
    shownBy: "get_available_products",
    title: "Delete product",
    description: "Deletes a Product. A claimed Product (e.g. by a project) cannot be deleted.",
  }),
  op({
    name: "get_product_charges",
    toolset: "charges",
    method: "GET",
    path: "/charges/product/{product_id}",
    token: true,
    params: { product_id: productId, ...chargeWindow() },
    query: CHARGES_QUERY,
    success: [200],
    kind: "read",
    title: "Get product charges",
    description: `Returns a Product's processing and storage charges. ${CHARGES_NOTE}`,
  }),
  op({
    name: "get_available_assets",
    toolset: "assets",
    method: "GET",
    path: "/asset",
    token: true,
    params: {
      scope_id: z
        .string({ error: "must be a string" })
        .min(1, { error: "must not be empty" })
        .max(255, { error: "must be at most 255 characters" })
        .describe("Only Assets of this scope: a username, or a product-, unit- or org- id")
        .optional(),
    },
    query: assetScopeQuery,
    success: [200, 201],
    kind: "read",
    title: "List available assets",
    description: "Lists the Assets (secrets and settings) the caller may see, optionally by scope.",
  }),
  op({
    name: "get_asset",
    toolset: "assets",
    method: "GET",
    path: "/asset/{asset_id}",
    token: true,
    params: { asset_id: assetId },
    success: [200, 201],
    kind: "read",
    title: "Get asset",
    description: "Returns an Asset, its content and the Merchants it is attached to.",
  }),
  op({
    name: "create_asset",
    toolset: "assets",
    method: "POST",
    path: "/asset",
    token: true,
    params: {
      name: assetName("Name of the Asset, unique within its scope"),
      description: text("What the Asset is for"),
      scope: oneOf(ENUMS.AssetScope, "What the Asset belongs to"),
      content_string: contentString.describe("The content (give this or content_file)").optional(),
      content_file: name(
        `Path of a file whose bytes are the content. ${UPLOAD_NOTE}`,
      ).optional(),
      scope_id: z
        .string({ error: "must be a string" })
        .min(1, { error: "must not be empty" })
        .max(255, { error: "must be at most 255 characters" })
        .describe("Id of the scope: a username, or a product-, unit- or org- id; none for GLOBAL")
        .optional(),
      is_secret: z.boolean({ error: "must be true or false" }).describe(
        "Whether the content is a secret, such as a password or key",
      ).default(false),
    },
    body: {
      name: "name",
      scope: "scope",
      secret: "is_secret",
      description: "description",
      scope_id: "scope_id",
      content_string: "content_string",
      content_file: { param: "content_file", file: true },
    },
    encoding: "multipart",
    check: assetScopeId,
    success: [201],
    kind: "create",
    shownBy: "get_available_assets",
    title: "Create asset",
    description:
      "Creates an Asset (a secret or setting) in a scope: USER, PRODUCT, UNIT, ORGANISATION or GLOBAL (admins).",
  }),
  op({
    name: "alter_asset",
    toolset: "assets",
    method: "PATCH",
    path: "/asset/{asset_id}",
    token: true,
    params: {
      asset_id: assetId,
      description: text("New description").optional(),
      content_string: contentString.describe("New content").optional(),
      content_file: name(`Path of a file whose bytes are the new content. ${UPLOAD_NOTE}`)
        .optional(),
    },
    body: {
      description: "description",
      content_string: "content_string",
      content_file: { param: "content_file", file: true },
    },
    encoding: "multipart",
    check: notBothContents,
    success: [200],
    kind: "update",
    shownBy: "get_asset",
    title: "Alter asset",
    description: "Replaces an Asset's content or description.",
  }),
  op({
    name: "delete_asset",
    toolset: "assets",
    method: "DELETE",
    path: "/asset/{asset_id}",
    token: true,
    params: { asset_id: assetId },
    success: [204],
    kind: "delete",
    shownBy: "get_available_assets",
    title: "Delete asset",
    description: "Deletes an Asset. An Asset attached to a Merchant must be detached first.",
  }),
  op({
    name: "enable_asset",
    toolset: "assets",
    method: "PATCH",
    path: "/asset/{asset_id}/enable",
    token: true,
    params: { asset_id: assetId },
    success: [204],
    kind: "update",
    shownBy: "get_asset",
    title: "Enable asset",
    description: "Enables a disabled Asset, so Merchants can use it again.",
  }),
  op({
    name: "disable_asset",
    toolset: "assets",
    method: "PATCH",
    path: "/asset/{asset_id}/disable",
    token: true,
    params: { asset_id: assetId },
    success: [204],
    kind: "update",
    shownBy: "get_asset",
    title: "Disable asset",
    description: "Disables an Asset without deleting it.",
  }),
  op({
    name: "attach_asset",
    toolset: "assets",
    method: "PATCH",
    path: "/asset/{asset_id}/attach",
    token: true,
    params: { asset_id: assetId, m_id: merchantId },
    query: { m_id: "m_id" },
    success: [204],
    kind: "update",
    shownBy: "get_asset",
    title: "Attach asset to merchant",
    description: "Lets a Merchant read an Asset. Merchants see only Assets attached to them.",
  }),
  op({
    name: "detach_asset",
    toolset: "assets",
    method: "PATCH",
    path: "/asset/{asset_id}/detach",
    token: true,
    params: { asset_id: assetId, m_id: merchantId },
    query: { m_id: "m_id" },
    success: [204],
    kind: "update",
    shownBy: "get_asset",
    title: "Detach asset from merchant",
    description: "Stops a Merchant from reading an Asset.",
  }),
  op({
    name: "get_event_stream",
    toolset: "event_streams",
    method: "GET",
    path: "/event-stream",
    token: true,
    success: [200],
    kind: "read",
    title: "Get my event stream",
    description: "Returns the caller's event stream (id and location); 404 when they have none.",
  }),
  op({
    name: "create_event_stream",
    toolset: "event_streams",
    method: "POST",
    path: "/event-stream",
    token: true,
    params: { event_format: oneOf(ENUMS.EventStreamFormat, "Format of the events") },
    body: { format: "event_format" },
    encoding: "json",
    success: [201],
    kind: "create",
    shownBy: "get_event_stream",
    title: "Create my event stream",
    description: "Creates an event stream for the caller; events arrive at its location.",
  }),
  op({
    name: "delete_event_stream",
    toolset: "event_streams",
    method: "DELETE",
    path: "/event-stream/{event_stream_id}",
    token: true,
    params: { event_stream_id: positiveId("Event stream id (an integer)") },
    success: [204],
    kind: "delete",
    shownBy: "get_event_stream",
    title: "Delete event stream",
    description: "Deletes an event stream. Only the user who created it.",
  }),
  op({
    name: "get_charges",
    toolset: "charges",
    method: "GET",
    path: "/charges",
    token: true,
    params: chargeWindow(),
    query: CHARGES_QUERY,
    success: [200],
    kind: "read",
    title: "Get all charges",
    description: `Returns the charges of every Organisation. Admins only. ${CHARGES_NOTE}`,
  }),
  op({
    name: "get_actions",
    toolset: "charges",
    method: "GET",
    path: "/action",
    token: true,
    params: {
      format: oneOf(ENUMS.EventStreamFormat, "Format of each action's content").optional(),
      from: date("First day of the actions (inclusive)").optional(),
      until: date("Day after the last day of the actions (exclusive)").optional(),
      m_id: merchantId.optional(),
      org_id: orgId.optional(),
      unit_id: unitId.optional(),
      product_id: productId.optional(),
    },
    query: {
      format: "format",
      from: "from",
      until: "until",
      m_id: "m_id",
      org_id: "org_id",
      unit_id: "unit_id",
      product_id: "product_id",
    },
    success: [200],
    kind: "read",
    title: "Get actions",
    description: "Returns the audit trail of actions, optionally by date, merchant or scope.",
  }),
] as const;

/** The name of an operation. */
export type OperationName = (typeof OPERATIONS)[number]["name"];

/** The row of the operation called `N`. */
export type OperationOf<N extends OperationName> = Extract<
  (typeof OPERATIONS)[number],
  { name: N }
>;

/** The parameters operation `N` takes, as a caller writes them. */
export type ParamsOf<N extends OperationName> = z.input<z.ZodObject<OperationOf<N>["params"]>>;

const BY_NAME: ReadonlyMap<string, Operation> = new Map(OPERATIONS.map((row) => [row.name, row]));

/** The row called `name`, or undefined. */
export function findOperation(name: string): Operation | undefined {
  return BY_NAME.get(name);
}

/** The names of a row's path parameters, in order. */
export function pathParams(row: Operation): string[] {
  return [...row.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
}
