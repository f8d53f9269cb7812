/**
 * What the stub does for each operation: one handler per row of the operation table, with the
 * real API's rules (401 with no or an unknown token, 403 for non-members and non-admins, 404 for
 * unknown ids, 400 for a bad body).
 *
 * @module
 */
import { ASSET_NAME_PATTERN, ENUMS } from "../api/params.ts";
import type { OperationName } from "../api/operations.ts";
import {
  type Asset,
  coinsString,
  HttpError,
  type Product,
  PRODUCT_TYPES,
  type StubState,
  type Unit,
  type User,
} from "./_state.ts";

/** What a handler gets: the caller, path parameters, query and decoded body. */
export interface Context {
  state: StubState;
  /** The caller; operations that need no token get an anonymous user. */
  user: User;
  path: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

/** A handler's answer. */
export interface Reply {
  status: number;
  body?: unknown;
}

/** One handler. */
export type Handler = (ctx: Context) => Reply;

const VERSION = "4.4.0";
const ok = (body: unknown): Reply => ({ status: 200, body });
const created = (body: unknown): Reply => ({ status: 201, body });
const noContent: Reply = { status: 204 };

function bad(message: string): never {
  throw new HttpError(400, message);
}

function adminOnly(user: User): void {
  if (!user.admin) throw new HttpError(403, "You need admin privileges to do this");
}

function stringField(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== "string" || value.trim() === "") {
    bad(`"${field}" must be a non-empty string`);
  }
  return value;
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  return body[field] === undefined ? undefined : stringField(body, field);
}

function enumField(
  body: Record<string, unknown>,
  field: string,
  values: readonly string[],
): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !values.includes(value)) {
    bad(`"${field}" must be one of ${values.join(", ")}`);
  }
  return value;
}

function intField(body: Record<string, unknown>, field: string, min: number, max: number) {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    bad(`"${field}" must be an integer from ${min} to ${max}`);
  }
  return value;
}

function queryWindow(query: URLSearchParams): { from?: string; until?: string; pbp?: number } {
  const window: { from?: string; until?: string; pbp?: number } = {};
  for (const key of ["from", "until"] as const) {
    const value = query.get(key);
    if (value === null) continue;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) bad(`"${key}" must be a date YYYY-MM-DD`);
    window[key] = value;
  }
  const pbp = query.get("pbp");
  if (pbp !== null) {
    if (!/^(0|-[1-9]\d*)$/.test(pbp)) bad('"pbp" must be an integer of 0 or less');
    window.pbp = Number(pbp);
  }
  return window;
}

function mustExistUser(state: StubState, username: string): User {
  const user = state.users.get(username);
  if (!user) throw new HttpError(404, `User "${username}" is not known`);
  return user;
}

function unitsGroupedByOrg(ctx: Context, units: Unit[]): Reply {
  const byOrg = new Map<string, Unit[]>();
  for (const unit of units) byOrg.set(unit.org_id, [...(byOrg.get(unit.org_id) ?? []), unit]);
  return ok({
    units: [...byOrg].map(([orgId, orgUnits]) => ({
      count: orgUnits.length,
      organisation: ctx.state.orgView(ctx.state.orgs.get(orgId)!, ctx.user),
      units: orgUnits.map((unit) => ctx.state.unitView(unit, ctx.user)),
    })),
  });
}

function productsReply(ctx: Context, products: Product[]): Reply {
  return ok({
    count: products.length,
    products: products.map((p) => ctx.state.productView(p, ctx.user)),
  });
}

function productChargesOf(ctx: Context, product: Product) {
  const unit = ctx.state.units.get(product.unit_id)!;
  const window = ctx.state.billingWindow(unit.billing_day, queryWindow(ctx.query));
  const charges = ctx.state.productCharges(product, window);
  return { unit, window, charges };
}

function summary(processing: number, storage: number) {
  return [
    { type: "PROCESSING", coins: coinsString(processing) },
    { type: "STORAGE", coins: coinsString(storage) },
  ];
}

function unitCharges(ctx: Context, unit: Unit) {
  const window = ctx.state.billingWindow(unit.billing_day, queryWindow(ctx.query));
  const products = [...ctx.state.products.values()].filter((p) => p.unit_id === unit.id);
  const perProduct = products.map((p) => ({ product: p, ...ctx.state.productCharges(p, window) }));
  const processing = perProduct.reduce((sum, p) => sum + p.processing, 0);
  const storage = perProduct.reduce((sum, p) => sum + p.storage, 0);
  return { window, perProduct, processing, storage };
}

function orgCharges(ctx: Context, orgId: string) {
  const units = [...ctx.state.units.values()].filter((u) => u.org_id === orgId);
  const perUnit = units.map((unit) => ({ unit, ...unitCharges(ctx, unit) }));
  const processing = perUnit.reduce((sum, u) => sum + u.processing, 0);
  const storage = perUnit.reduce((sum, u) => sum + u.storage, 0);
  return { perUnit, processing, storage };
}

function assetScopeTarget(ctx: Context, scope: string, scopeId: string | undefined): string {
  const { state, user } = ctx;
  if (scope === "GLOBAL") {
    adminOnly(user);
    if (scopeId) bad('"scope_id" must not be given for a GLOBAL asset');
    return "";
  }
  if (!scopeId) bad(`"scope_id" is required for a ${scope} asset`);
  if (scope === "USER") {
    if (scopeId !== user.id && !user.admin) {
      throw new HttpError(403, "You can only create USER assets for yourself");
    }
    mustExistUser(state, scopeId);
  } else if (scope === "ORGANISATION") state.memberOrg(user, scopeId);
  else if (scope === "UNIT") state.usableUnit(user, scopeId);
  else state.usableProduct(user, scopeId);
  return scopeId;
}

function contentOf(body: Record<string, unknown>): string | undefined {
  const file = body.content_file;
  if (file !== undefined && body.content_string !== undefined) {
    bad('Give "content_string" or "content_file", not both');
  }
  if (isFilePart(file)) return file.content;
  return body.content_string === undefined ? undefined : String(body.content_string);
}

function isFilePart(value: unknown): value is { filename: string; content: string } {
  return typeof value === "object" && value !== null && "filename" in value;
}

function formBoolean(value: unknown, field: string): boolean {
  if (value === undefined || value === "false" || value === false) return false;
  if (value === "true" || value === true) return true;
  bad(`"${field}" must be true or false`);
}

function merchantFromQuery(ctx: Context): number {
  const raw = ctx.query.get("m_id");
  if (raw === null || !/^[1-9]\d*$/.test(raw)) bad('"m_id" must be a positive integer');
  const id = Number(raw);
  if (!ctx.state.merchants.has(id)) throw new HttpError(404, `Merchant ${id} does not exist`);
  return id;
}

function editableAsset(ctx: Context): Asset {
  const asset = ctx.state.visibleAsset(ctx.user, ctx.path.asset_id!);
  if (asset.creator !== ctx.user.id && !ctx.user.admin) {
    throw new HttpError(403, "Only the Asset's creator or an admin can change it");
  }
  return asset;
}

function version(): Reply {
  return ok({ version: VERSION });
}

function availableUnits(ctx: Context): Reply {
  const name = ctx.query.get("name");
  const units = [...ctx.state.units.values()]
    .filter((u) => ctx.state.canUseUnit(ctx.user, u))
    .filter((u) => name === null || u.name === name);
  return unitsGroupedByOrg(ctx, units);
}

/** The handler of every operation, by the operation's name. */
export const HANDLERS: Record<OperationName, Handler> = {
  // Never reached through the stub: ping sends get_version's request (the table's sameRequestAs).
  ping: version,
  get_version: version,
  get_event_stream_version: () =>
    ok({ version: "1.2.0", protocol: "WEBSOCKET", name: "python-fastapi-websocket" }),
  get_account: ({ user }) =>
    ok({
      user: { id: user.id },
      caller_has_admin_privilege: user.admin,
      account_server_roles: user.admin ? ["as-admin", "as-user"] : ["as-user"],
    }),
  get_merchants: ({ state }) =>
    ok({ count: state.merchants.size, merchants: [...state.merchants.values()] }),
  get_merchant: ({ state, path }) => {
    const merchant = state.merchants.get(Number(path.merchant_id));
    if (!merchant) throw new HttpError(404, `Merchant ${path.merchant_id} does not exist`);
    return ok(merchant);
  },
  get_organisations: (ctx) => {
    const name = ctx.query.get("name");
    const orgs = [...ctx.state.orgs.values()]
      .filter((o) => ctx.state.isOrgMember(ctx.user, o))
      .filter((o) => name === null || o.name === name);
    return ok({
      count: orgs.length,
      organisations: orgs.map((o) => ctx.state.orgView(o, ctx.user)),
    });
  },
  get_organisation: ({ state, user, path }) =>
    ok(state.orgView(state.memberOrg(user, path.org_id!), user)),
  get_default_organisation: ({ state, user }) => {
    const org = state.orgView(state.orgs.get(state.defaultOrgId)!, user);
    delete org.users;
    delete org.owner_id;
    return ok(org);
  },
  create_organisation: ({ state, user, body }) => {
    adminOnly(user);
    const name = stringField(body, "name");
    const owner = stringField(body, "owner");
    const privacy = enumField(body, "default_product_privacy", ENUMS.DefaultProductPrivacy);
    mustExistUser(state, owner);
    if ([...state.orgs.values()].some((o) => o.name === name)) {
      bad(`An Organisation called "${name}" already exists`);
    }
    const org = state.addOrg(name, owner, user.id);
    if (privacy) org.default_product_privacy = privacy;
    return created({ id: org.id });
  },
  alter_organisation: ({ state, user, path, body }) => {
    const org = state.memberOrg(user, path.org_id!);
    const name = optionalString(body, "name");
    const privacy = enumField(body, "default_product_privacy", ENUMS.DefaultProductPrivacy);
    if (name !== undefined) org.name = name;
    if (privacy !== undefined) org.default_product_privacy = privacy;
    state.record({ action: "alter_organisation", username: user.id, org_id: org.id });
    return { status: 200 };
  },
  delete_organisation: ({ state, user, path }) => {
    adminOnly(user);
    const org = state.org(path.org_id!);
    if (org.id === state.defaultOrgId) bad("The Default Organisation cannot be deleted");
    if ([...state.units.values()].some((u) => u.org_id === org.id)) {
      bad(`Organisation "${org.id}" still has Units: delete them first`);
    }
    state.orgs.delete(org.id);
    state.record({ action: "delete_organisation", username: user.id, org_id: org.id });
    return noContent;
  },
  get_organisation_units: (ctx) => {
    const org = ctx.state.memberOrg(ctx.user, ctx.path.org_id!);
    const units = [...ctx.state.units.values()]
      .filter((u) => u.org_id === org.id && ctx.state.canUseUnit(ctx.user, u));
    return ok({
      count: units.length,
      organisation: ctx.state.orgView(org, ctx.user),
      units: units.map((u) => ctx.state.unitView(u, ctx.user)),
    });
  },
  get_organisation_users: ({ state, user, path }) => {
    const org = state.memberOrg(user, path.org_id!);
    const view = state.orgView(org, user);
    delete view.users;
    return ok({
      count: org.members.size,
      organisation: view,
      users: [...org.members].map((id) => ({ id })),
    });
  },
  add_user_to_organisation: ({ state, user, path }) => {
    const org = state.memberOrg(user, path.org_id!);
    mustExistUser(state, path.username!);
    if (org.members.has(path.username!)) bad(`"${path.username}" is already a member`);
    org.members.add(path.username!);
    state.record({ action: "add_user_to_organisation", username: user.id, org_id: org.id });
    return { status: 201 };
  },
  remove_user_from_organisation: ({ state, user, path }) => {
    const org = state.memberOrg(user, path.org_id!);
    if (!org.members.has(path.username!)) {
      throw new HttpError(404, `"${path.username}" is not a member of "${org.id}"`);
    }
    org.members.delete(path.username!);
    state.record({ action: "remove_user_from_organisation", username: user.id, org_id: org.id });
    return noContent;
  },
  get_organisation_charges: (ctx) => {
    const org = ctx.state.memberOrg(ctx.user, ctx.path.org_id!);
    const { perUnit, processing, storage } = orgCharges(ctx, org.id);
    return ok({
      organisation_id: org.id,
      name: org.name,
      coins: coinsString(processing + storage),
      summary: summary(processing, storage),
      unit_charges: perUnit.map((u) => ({
        unit_id: u.unit.id,
        name: u.unit.name,
        billing_day: u.unit.billing_day,
        from: u.window.from,
        until: u.window.until,
        summary: summary(u.processing, u.storage),
      })),
    });
  },
  get_available_units: availableUnits,
  get_units: availableUnits,
  get_unit: ({ state, user, path }) =>
    ok(state.unitView(state.usableUnit(user, path.unit_id!), user)),
  create_unit: ({ state, user, path, body }) => {
    const org = state.memberOrg(user, path.org_id!);
    if (org.id === state.defaultOrgId) bad("Use the personal unit to add a Unit for yourself");
    const name = stringField(body, "name");
    const billingDay = intField(body, "billing_day", 1, 28) ?? bad('"billing_day" is required');
    const privacy = enumField(body, "default_product_privacy", ENUMS.DefaultProductPrivacy);
    const unit = state.addUnit(org.id, name, billingDay, user.id, user.id);
    if (privacy) unit.default_product_privacy = privacy;
    return created({ id: unit.id });
  },
  alter_unit: ({ state, user, path, body }) => {
    const unit = state.usableUnit(user, path.unit_id!);
    const name = optionalString(body, "name");
    const privacy = enumField(body, "default_product_privacy", ENUMS.DefaultProductPrivacy);
    if (name !== undefined) unit.name = name;
    if (privacy !== undefined) unit.default_product_privacy = privacy;
    state.record({
      action: "alter_unit",
      username: user.id,
      org_id: unit.org_id,
      unit_id: unit.id,
    });
    return { status: 200 };
  },
  delete_unit: ({ state, user, path }) => {
    const unit = state.usableUnit(user, path.unit_id!);
    if ([...state.products.values()].some((p) => p.unit_id === unit.id)) {
      bad(`Unit "${unit.id}" still has Products: delete them first`);
    }
    state.units.delete(unit.id);
    state.record({
      action: "delete_unit",
      username: user.id,
      org_id: unit.org_id,
      unit_id: unit.id,
    });
    return noContent;
  },
  get_unit_users: ({ state, user, path }) => {
    const unit = state.usableUnit(user, path.unit_id!);
    const view = state.unitView(unit, user);
    delete view.users;
    return ok({
      count: unit.members.size,
      unit: view,
      users: [...unit.members].map((id) => ({ id })),
    });
  },
  add_user_to_unit: ({ state, user, path }) => {
    const unit = state.usableUnit(user, path.unit_id!);
    if (unit.personal) bad("Users cannot be added to a personal unit");
    mustExistUser(state, path.username!);
    if (unit.members.has(path.username!)) bad(`"${path.username}" is already a member`);
    unit.members.add(path.username!);
    state.record({ action: "add_user_to_unit", username: user.id, unit_id: unit.id });
    return { status: 201 };
  },
  remove_user_from_unit: ({ state, user, path }) => {
    const unit = state.usableUnit(user, path.unit_id!);
    if (!unit.members.has(path.username!)) {
      throw new HttpError(404, `"${path.username}" is not a member of "${unit.id}"`);
    }
    unit.members.delete(path.username!);
    state.record({ action: "remove_user_from_unit", username: user.id, unit_id: unit.id });
    return noContent;
  },
  get_unit_charges: (ctx) => {
    const unit = ctx.state.usableUnit(ctx.user, ctx.path.unit_id!);
    const { window, perProduct, processing, storage } = unitCharges(ctx, unit);
    return ok({
      caller_is_member: unit.members.has(ctx.user.id),
      unit_id: unit.id,
      name: unit.name,
      owner_id: unit.owner_id,
      private: unit.private,
      created: unit.created,
      coins: coinsString(processing + storage),
      count: perProduct.length,
      billing_day: unit.billing_day,
      from: window.from,
      until: window.until,
      summary: { charges: summary(processing, storage) },
      products: perProduct.map((p) => ({
        product_id: p.product.id,
        product_type: p.product.type,
        charges: summary(p.processing, p.storage),
      })),
    });
  },
  get_personal_unit: ({ state, user }) => {
    const unit = personalUnit(state, user);
    if (!unit) throw new HttpError(404, "You do not have a personal unit");
    return ok(state.unitView(unit, user));
  },
  create_personal_unit: ({ state, user, body }) => {
    const billingDay = intField(body, "billing_day", 1, 28) ?? bad('"billing_day" is required');
    if (personalUnit(state, user)) bad("You already have a personal unit");
    const unit = state.addPersonalUnit(user.id, billingDay, user.id);
    return created({ organisation_id: state.defaultOrgId, id: unit.id });
  },
  delete_personal_unit: ({ state, user }) => {
    const unit = personalUnit(state, user);
    if (!unit) throw new HttpError(404, "You do not have a personal unit");
    if ([...state.products.values()].some((p) => p.unit_id === unit.id)) {
      bad("Your personal unit still has Products: delete them first");
    }
    state.units.delete(unit.id);
    state.record({ action: "delete_personal_unit", username: user.id, unit_id: unit.id });
    return noContent;
  },
  get_available_products: (ctx) =>
    productsReply(
      ctx,
      [...ctx.state.products.values()].filter((p) =>
        ctx.state.canUseUnit(ctx.user, ctx.state.units.get(p.unit_id)!)
      ),
    ),
  get_product: (ctx) =>
    ok({
      product: ctx.state.productView(
        ctx.state.usableProduct(ctx.user, ctx.path.product_id!),
        ctx.user,
      ),
    }),
  get_products_for_unit: (ctx) => {
    const unit = ctx.state.usableUnit(ctx.user, ctx.path.unit_id!);
    return productsReply(
      ctx,
      [...ctx.state.products.values()].filter((p) => p.unit_id === unit.id),
    );
  },
  get_products_for_organisation: (ctx) => {
    const org = ctx.state.memberOrg(ctx.user, ctx.path.org_id!);
    return productsReply(
      ctx,
      [...ctx.state.products.values()].filter((p) => {
        const unit = ctx.state.units.get(p.unit_id)!;
        return unit.org_id === org.id && ctx.state.canUseUnit(ctx.user, unit);
      }),
    );
  },
  get_product_types: () => ok({ count: PRODUCT_TYPES.length, product_types: PRODUCT_TYPES }),
  get_product_default_storage_cost: () =>
    ok({
      default_storage_cost: {
        cost: "1.25",
        units: "COIN/GIB/DAY",
        description: "Coins per GiB of peak storage on each billable day",
      },
    }),
  create_product: ({ state, user, path, body }) => {
    const unit = state.usableUnit(user, path.unit_id!);
    const name = stringField(body, "name");
    const type = enumField(body, "type", ENUMS.ProductType) ?? bad('"type" is required');
    const flavour = enumField(body, "flavour", ENUMS.Flavour);
    const allowance = intField(body, "allowance", 0, 1_000_000_000) ?? 0;
    const limit = intField(body, "limit", 0, 1_000_000_000) ?? 0;
    if (type === "DATA_MANAGER_STORAGE_SUBSCRIPTION") {
      if (flavour) bad("A storage subscription has no flavour");
      if (allowance <= 0) bad("A storage subscription needs an allowance");
      if (limit && limit < allowance) bad('"limit" must not be below "allowance"');
    } else {
      if (!flavour) bad("A project-tier subscription needs a flavour");
      if (allowance || limit) bad("A project-tier subscription takes no allowance or limit");
    }
    const product = state.addProduct(unit.id, { name, type, flavour, allowance, limit }, user.id);
    return created({ id: product.id });
  },
  alter_product: ({ state, user, path, body }) => {
    const product = state.usableProduct(user, path.product_id!);
    const name = optionalString(body, "name");
    const allowance = intField(body, "allowance", 0, 1_000_000_000);
    const limit = intField(body, "limit", 0, 1_000_000_000);
    if ((limit ?? product.limit) < (allowance ?? product.allowance)) {
      bad('"limit" must not be below "allowance"');
    }
    if (name !== undefined) product.name = name;
    if (allowance !== undefined) product.allowance = allowance;
    if (limit !== undefined) product.limit = limit;
    state.record({ action: "alter_product", username: user.id, product_id: product.id });
    return { status: 200 };
  },
  delete_product: ({ state, user, path }) => {
    const product = state.usableProduct(user, path.product_id!);
    if (product.claim) bad(`Product "${product.id}" is claimed by "${product.claim.id}"`);
    state.products.delete(product.id);
    state.record({ action: "delete_product", username: user.id, product_id: product.id });
    return noContent;
  },
  get_product_charges: (ctx) => {
    const product = ctx.state.usableProduct(ctx.user, ctx.path.product_id!);
    const { unit, window, charges } = productChargesOf(ctx, product);
    const merchant = ctx.state.merchants.get(1)!;
    const processing = ctx.state.processingItems(product, window);
    const storage = ctx.state.storageItems(product, window);
    return ok({
      product_id: product.id,
      product_type: product.type,
      billing_day: unit.billing_day,
      claimable: product.type === "DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION",
      ...(product.claim ? { claim: product.claim } : {}),
      count: processing.length + storage.length,
      from: window.from,
      until: window.until,
      coins: coinsString(charges.total),
      processing_charges: processing.map((item) => ({
        merchant_name: merchant.name,
        merchant_kind: merchant.kind,
        merchant_api_hostname: merchant.api_hostname,
        final: false,
        charge: {
          id: item.id,
          sqn: item.id,
          name: "Job run",
          username: unit.owner_id,
          timestamp: `${item.day}T12:00:00Z`,
          coins: coinsString(item.millicoins),
        },
      })),
      storage_charges: {
        num_items: storage.length,
        items: storage.map((item) => ({
          item_number: item.item_number,
          date: item.date,
          coins: coinsString(item.millicoins),
        })),
      },
    });
  },
  get_available_assets: ({ state, user, query }) => {
    const filters: [string, (a: Asset) => boolean][] = [
      ["user_id", (a) => a.scope === "USER"],
      ["product_id", (a) => a.scope === "PRODUCT"],
      ["unit_id", (a) => a.scope === "UNIT"],
      ["org_id", (a) => a.scope === "ORGANISATION"],
    ];
    const given = filters.filter(([key]) => query.has(key));
    if (given.length > 1) bad("Give at most one of user_id, product_id, unit_id and org_id");
    const [key, scopeMatches] = given[0] ?? ["", () => true];
    const assets = [...state.assets.values()]
      .filter((a) => state.canSeeAsset(user, a))
      .filter((a) => !key || (scopeMatches(a) && a.scope_id === query.get(key)));
    return ok({ count: assets.length, assets: assets.map((a) => state.assetView(a)) });
  },
  get_asset: ({ state, user, path }) =>
    ok(state.assetView(state.visibleAsset(user, path.asset_id!))),
  create_asset: (ctx) => {
    const { state, user, body } = ctx;
    const name = stringField(body, "name");
    if (!ASSET_NAME_PATTERN.test(name)) {
      bad(`"name" must be 1-63 lowercase letters, digits or "-" (${ASSET_NAME_PATTERN.source})`);
    }
    const scope = enumField(body, "scope", ENUMS.AssetScope) ?? bad('"scope" is required');
    const scopeId = assetScopeTarget(ctx, scope, optionalString(body, "scope_id"));
    const content = contentOf(body) ?? bad('Give "content_string" or "content_file"');
    const secret = formBoolean(body.secret, "secret");
    const clash = [...state.assets.values()]
      .some((a) => a.scope === scope && a.scope_id === scopeId && a.name === name);
    if (clash) bad(`An Asset called "${name}" already exists in that scope`);
    const description = body.description === undefined ? undefined : String(body.description);
    const asset = state.addAsset({
      name,
      creator: user.id,
      scope,
      scope_id: scopeId,
      secret,
      content,
      description,
    });
    return created({ id: asset.id });
  },
  alter_asset: (ctx) => {
    const asset = editableAsset(ctx);
    const content = contentOf(ctx.body);
    if (content !== undefined) {
      asset.content = content;
      asset.content_modified = ctx.state.now().toISOString();
    }
    if (ctx.body.description !== undefined) asset.description = String(ctx.body.description);
    ctx.state.record({ action: "alter_asset", username: ctx.user.id });
    return { status: 200 };
  },
  delete_asset: (ctx) => {
    const asset = editableAsset(ctx);
    if (asset.merchants.size) bad(`Asset "${asset.id}" is attached to Merchants: detach it first`);
    ctx.state.assets.delete(asset.id);
    ctx.state.record({ action: "delete_asset", username: ctx.user.id });
    return noContent;
  },
  enable_asset: (ctx) => {
    editableAsset(ctx).disabled = false;
    return noContent;
  },
  disable_asset: (ctx) => {
    editableAsset(ctx).disabled = true;
    return noContent;
  },
  attach_asset: (ctx) => {
    const asset = editableAsset(ctx);
    const merchant = merchantFromQuery(ctx);
    asset.merchants.add(merchant);
    ctx.state.record({ action: "attach_asset", username: ctx.user.id, m_id: merchant });
    return noContent;
  },
  detach_asset: (ctx) => {
    const asset = editableAsset(ctx);
    const merchant = merchantFromQuery(ctx);
    if (!asset.merchants.delete(merchant)) {
      bad(`Asset "${asset.id}" is not attached to Merchant ${merchant}`);
    }
    ctx.state.record({ action: "detach_asset", username: ctx.user.id, m_id: merchant });
    return noContent;
  },
  get_event_stream: ({ state, user }) => {
    const stream = [...state.streams.values()].find((s) => s.owner === user.id);
    if (!stream) throw new HttpError(404, "You do not have an event stream");
    const { owner: _owner, ...view } = stream;
    return ok(view);
  },
  create_event_stream: ({ state, user, body }) => {
    const format = enumField(body, "format", ENUMS.EventStreamFormat) ?? "PROTOCOL_STRING";
    if ([...state.streams.values()].some((s) => s.owner === user.id)) {
      bad("You already have an event stream");
    }
    const { owner: _owner, ...view } = state.addStream(user.id, format);
    return created(view);
  },
  delete_event_stream: ({ state, user, path }) => {
    const stream = state.streams.get(Number(path.event_stream_id));
    if (!stream) throw new HttpError(404, `Event stream ${path.event_stream_id} does not exist`);
    if (stream.owner !== user.id) throw new HttpError(403, "You did not create that event stream");
    state.streams.delete(stream.id);
    return noContent;
  },
  get_charges: (ctx) => {
    adminOnly(ctx.user);
    const perOrg = [...ctx.state.orgs.values()].map((org) => ({ org, ...orgCharges(ctx, org.id) }));
    const processing = perOrg.reduce((sum, o) => sum + o.processing, 0);
    const storage = perOrg.reduce((sum, o) => sum + o.storage, 0);
    return ok({
      coins: coinsString(processing + storage),
      count: perOrg.length,
      summary: summary(processing, storage),
      organisation_charges: perOrg.map((o) => ({
        organisation_id: o.org.id,
        name: o.org.name,
        summary: summary(o.processing, o.storage),
      })),
    });
  },
  get_actions: ({ state, user, query }) => {
    adminOnly(user);
    const window = queryWindow(query);
    const format = query.get("format") ?? "PROTOCOL_STRING";
    if (!(ENUMS.EventStreamFormat as readonly string[]).includes(format)) {
      bad(`"format" must be one of ${ENUMS.EventStreamFormat.join(", ")}`);
    }
    const mId = query.get("m_id");
    const actions = state.actions.filter((a) =>
      (!window.from || a.timestamp.slice(0, 10) >= window.from) &&
      (!window.until || a.timestamp.slice(0, 10) < window.until) &&
      (mId === null || String(a.m_id) === mId) &&
      (["org_id", "unit_id", "product_id"] as const).every((k) =>
        !query.has(k) || a[k] === query.get(k)
      )
    );
    return ok({
      count: actions.length,
      actions: actions.map((a) => ({
        id: a.id,
        action: a.action,
        timestamp: a.timestamp,
        content: format === "JSON_STRING"
          ? JSON.stringify({ action: a.action, username: a.username })
          : `action: "${a.action}" username: "${a.username}"`,
        ...(a.m_id ? { merchant: summaryOfMerchant(state, a.m_id) } : {}),
        ...(a.org_id ? { org_id: a.org_id } : {}),
        ...(a.unit_id ? { unit_id: a.unit_id } : {}),
        ...(a.product_id ? { product_id: a.product_id } : {}),
      })),
    });
  },
};

function personalUnit(state: StubState, user: User): Unit | undefined {
  return [...state.units.values()].find((u) => u.personal && u.owner_id === user.id);
}

function summaryOfMerchant(state: StubState, id: number) {
  const merchant = state.merchants.get(id);
  return merchant ? { id, kind: merchant.kind, name: merchant.name } : undefined;
}
