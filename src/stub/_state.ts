/**
 * The stub Account Server's in-memory world: users, organisations, units, products, assets,
 * merchants, event streams and actions, with the seed data and the views that turn them into
 * bodies of the real API's shapes (`schemas.json`).
 *
 * @module
 */

/** An error the stub answers with: a status and `{"error": message}`. */
export class HttpError extends Error {
  /** A failure with `status` and the server's own words. */
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** A user of the stub, known by username. */
export interface User {
  id: string;
  admin: boolean;
}

/** An organisation. */
export interface Org {
  id: string;
  name: string;
  owner_id: string;
  created: string;
  private: boolean;
  default_product_privacy: string;
  members: Set<string>;
}

/** A unit of an organisation. */
export interface Unit {
  id: string;
  name: string;
  org_id: string;
  owner_id: string;
  created: string;
  billing_day: number;
  private: boolean;
  default_product_privacy: string;
  members: Set<string>;
  personal: boolean;
}

/** A product (a subscription) of a unit. */
export interface Product {
  id: string;
  unit_id: string;
  name: string;
  type: string;
  flavour?: string;
  allowance: number;
  limit: number;
  created: string;
  claim?: { id: string; name?: string };
}

/** An asset: a secret or setting in a scope. */
export interface Asset {
  id: string;
  name: string;
  creator: string;
  scope: string;
  scope_id: string;
  secret: boolean;
  disabled: boolean;
  content: string;
  created: string;
  content_modified?: string;
  description?: string;
  merchants: Set<number>;
}

/** A merchant: a service whose use is charged. */
export interface Merchant {
  id: number;
  created: string;
  kind: "DATA_MANAGER";
  name: string;
  api_hostname: string;
}

/** A user's event stream. */
export interface EventStream {
  id: number;
  owner: string;
  format: string;
  name: string;
  location: string;
}

/** One entry of the audit trail. */
export interface Action {
  id: number;
  action: string;
  timestamp: string;
  username: string;
  org_id?: string;
  unit_id?: string;
  product_id?: string;
  m_id?: number;
}

/** The usernames and bearer tokens the stub is seeded with. */
export const SEED_USERS = {
  admin: { username: "admin", token: "stub-admin-token-0c9f3e", admin: true },
  alice: { username: "alice", token: "stub-alice-token-5b21d7", admin: false },
  bob: { username: "bob", token: "stub-bob-token-e84a10", admin: false },
} as const;

/** The product types the stub offers. */
export const PRODUCT_TYPES = [
  ...["EVALUATION", "BRONZE", "SILVER", "GOLD"].map((flavour) => ({
    type: "DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION",
    flavour,
    service_kind: "DATA_MANAGER",
  })),
  { type: "DATA_MANAGER_STORAGE_SUBSCRIPTION", service_kind: "DATA_MANAGER" },
];

const STORAGE_COST_MILLICOINS = 1250;

/** The whole world of one stub server. */
export class StubState {
  users = new Map<string, User>();
  tokens = new Map<string, string>();
  orgs = new Map<string, Org>();
  units = new Map<string, Unit>();
  products = new Map<string, Product>();
  assets = new Map<string, Asset>();
  merchants = new Map<number, Merchant>();
  streams = new Map<number, EventStream>();
  actions: Action[] = [];
  defaultOrgId: string;
  /** Hears every action recorded (the event-stream service listens here). */
  onRecord?: (action: Action) => void;
  /** Where event-stream sockets are served, e.g. `ws://127.0.0.1:41234`. */
  streamOrigin = "wss://events.example.com";
  #ids = 0;
  #streamIds = 0;
  #now: () => Date;

  /** A seeded world; `now` fixes the clock for charges and timestamps. */
  constructor(now: () => Date = () => new Date()) {
    this.#now = now;
    this.#seedUsersAndMerchants();
    this.defaultOrgId = this.addOrg("Default", "admin", "admin").id;
    for (const user of this.users.keys()) this.addPersonalUnit(user, 1, "admin");
    for (const user of this.users.keys()) this.addStream(user, "JSON_STRING");
    const unit = this.#seedChemistry();
    this.#seedAssets(unit);
  }

  #seedUsersAndMerchants(): void {
    for (const seed of Object.values(SEED_USERS)) {
      this.users.set(seed.username, { id: seed.username, admin: seed.admin });
      this.tokens.set(seed.token, seed.username);
    }
    // The user Keycloak's client-credentials grant acts as.
    this.users.set("svc-account-server", { id: "svc-account-server", admin: true });
    this.merchants.set(1, {
      id: 1,
      created: "2024-01-08T09:00:00Z",
      kind: "DATA_MANAGER",
      name: "Squonk2 Data Manager",
      api_hostname: "data-manager.example.com",
    });
    this.merchants.set(2, {
      id: 2,
      created: "2024-03-12T09:00:00Z",
      kind: "DATA_MANAGER",
      name: "Squonk2 Data Manager (staging)",
      api_hostname: "data-manager-staging.example.com",
    });
  }

  /** Alice's Organisation, its Unit "Chemistry" and the Unit's two Products; the Unit's id. */
  #seedChemistry(): string {
    const org = this.addOrg("Informatics Matters", "alice", "admin");
    const unit = this.addUnit(org.id, "Chemistry", 3, "alice", "alice");
    this.addProduct(unit.id, {
      name: "Chemistry storage",
      type: "DATA_MANAGER_STORAGE_SUBSCRIPTION",
      allowance: 500,
      limit: 1000,
    }, "alice");
    this.addProduct(unit.id, {
      name: "Chemistry project",
      type: "DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION",
      flavour: "BRONZE",
      allowance: 0,
      limit: 0,
    }, "alice");
    return unit.id;
  }

  #seedAssets(unitId: string): void {
    this.addAsset({
      name: "api-key",
      creator: "alice",
      scope: "USER",
      scope_id: "alice",
      secret: true,
      content: "s3cret-value",
      description: "Alice's key for an external service",
    });
    this.addAsset({
      name: "default-queue",
      creator: "alice",
      scope: "UNIT",
      scope_id: unitId,
      secret: false,
      content: "standard",
      description: "Queue used by the Chemistry unit's jobs",
    });
    this.addAsset({
      name: "motd",
      creator: "admin",
      scope: "GLOBAL",
      scope_id: "",
      secret: false,
      content: "Welcome to Squonk2",
    });
  }

  /** The current time. */
  now(): Date {
    return this.#now();
  }

  /** A new id of the given kind: deterministic while seeding, so the demo ids are stable. */
  newId(prefix: string): string {
    const n = (++this.#ids).toString(16).padStart(12, "0");
    return `${prefix}-00000000-0000-4000-8000-${n}`;
  }

  /** Records an action in the audit trail. */
  record(action: Omit<Action, "id" | "timestamp">): void {
    const recorded = {
      id: this.actions.length + 1,
      timestamp: this.now().toISOString(),
      ...action,
    };
    this.actions.push(recorded);
    this.onRecord?.(recorded);
  }

  /** Adds an organisation owned by `owner`. */
  addOrg(name: string, owner: string, by: string): Org {
    const org: Org = {
      id: this.newId("org"),
      name,
      owner_id: owner,
      created: this.now().toISOString(),
      private: false,
      default_product_privacy: "DEFAULT_PRIVATE",
      members: new Set([owner]),
    };
    this.orgs.set(org.id, org);
    this.record({ action: "create_organisation", username: by, org_id: org.id });
    return org;
  }

  /** Adds a unit to an organisation. */
  addUnit(orgId: string, name: string, billingDay: number, owner: string, by: string): Unit {
    const org = this.orgs.get(orgId)!;
    const unit: Unit = {
      id: this.newId("unit"),
      name,
      org_id: orgId,
      owner_id: owner,
      created: this.now().toISOString(),
      billing_day: billingDay,
      private: false,
      default_product_privacy: org.default_product_privacy,
      members: new Set([owner]),
      personal: false,
    };
    this.units.set(unit.id, unit);
    this.record({ action: "create_unit", username: by, org_id: orgId, unit_id: unit.id });
    return unit;
  }

  /** Adds `user`'s personal unit to the Default Organisation. */
  addPersonalUnit(user: string, billingDay: number, by: string): Unit {
    const unit = this.addUnit(this.defaultOrgId, `${user}'s personal unit`, billingDay, user, by);
    unit.personal = true;
    unit.private = true;
    return unit;
  }

  /** Adds a product to a unit. */
  addProduct(
    unitId: string,
    fields: Pick<Product, "name" | "type" | "flavour" | "allowance" | "limit">,
    by: string,
  ): Product {
    const product: Product = {
      id: this.newId("product"),
      unit_id: unitId,
      created: this.now().toISOString(),
      ...fields,
    };
    this.products.set(product.id, product);
    this.record({
      action: "create_product",
      username: by,
      org_id: this.units.get(unitId)?.org_id,
      unit_id: unitId,
      product_id: product.id,
    });
    return product;
  }

  /** Adds an asset. */
  addAsset(fields: Omit<Asset, "id" | "created" | "disabled" | "merchants">): Asset {
    const asset: Asset = {
      id: this.newId("asset"),
      created: this.now().toISOString(),
      disabled: false,
      merchants: new Set(),
      ...fields,
    };
    this.assets.set(asset.id, asset);
    this.record({ action: "create_asset", username: fields.creator });
    return asset;
  }

  /** Adds an event stream for `owner`. */
  addStream(owner: string, format: string): EventStream {
    const id = ++this.#streamIds;
    const stream = {
      id,
      owner,
      format,
      name: `es-${owner}-${id}`,
      location: `${this.streamOrigin}/event-stream/${crypto.randomUUID()}`,
    };
    this.streams.set(id, stream);
    return stream;
  }

  /** Serves event-stream sockets at `origin` from now on, moving the existing streams there. */
  setStreamOrigin(origin: string): void {
    this.streamOrigin = origin;
    for (const stream of this.streams.values()) {
      stream.location = stream.location.replace(/^.*(?=\/event-stream\/)/, origin);
    }
  }

  /**
   * The user a bearer token stands for, or a 401: a seeded static token, or one that `issued`
   * (the stub's Keycloak) recognises as its own and unexpired.
   */
  userForToken(token: string | undefined, issued: (token: string) => string | undefined): User {
    const name = token === undefined ? undefined : this.tokens.get(token) ?? issued(token);
    const user = name === undefined ? undefined : this.users.get(name);
    if (!user) throw new HttpError(401, "Missing or invalid access token");
    return user;
  }

  /** Whether `user` may see and act on `org`. */
  isOrgMember(user: User, org: Org): boolean {
    return user.admin || org.members.has(user.id) || org.owner_id === user.id;
  }

  /** Whether `user` may see and act on `unit`. */
  canUseUnit(user: User, unit: Unit): boolean {
    if (user.admin || unit.members.has(user.id) || unit.owner_id === user.id) return true;
    const org = this.orgs.get(unit.org_id);
    return !unit.personal && org !== undefined && this.isOrgMember(user, org);
  }

  /** The organisation `id`, or a 404. */
  org(id: string): Org {
    const org = this.orgs.get(id);
    if (!org) throw new HttpError(404, `Organisation "${id}" does not exist`);
    return org;
  }

  /** The organisation `id` if `user` is a member, else a 404 or 403. */
  memberOrg(user: User, id: string): Org {
    const org = this.org(id);
    if (!this.isOrgMember(user, org)) {
      throw new HttpError(403, `You are not a member of Organisation "${id}"`);
    }
    return org;
  }

  /** The unit `id` if `user` may use it, else a 404 or 403. */
  usableUnit(user: User, id: string): Unit {
    const unit = this.units.get(id);
    if (!unit) throw new HttpError(404, `Unit "${id}" does not exist`);
    if (!this.canUseUnit(user, unit)) {
      throw new HttpError(403, `You are not a member of Unit "${id}" or its Organisation`);
    }
    return unit;
  }

  /** The product `id` if `user` may use its unit, else a 404 or 403. */
  usableProduct(user: User, id: string): Product {
    const product = this.products.get(id);
    if (!product) throw new HttpError(404, `Product "${id}" does not exist`);
    this.usableUnit(user, product.unit_id);
    return product;
  }

  /** Whether `user` may see `asset`. */
  canSeeAsset(user: User, asset: Asset): boolean {
    if (user.admin || asset.scope === "GLOBAL" || asset.creator === user.id) return true;
    switch (asset.scope) {
      case "USER":
        return asset.scope_id === user.id;
      case "ORGANISATION": {
        const org = this.orgs.get(asset.scope_id);
        return org !== undefined && this.isOrgMember(user, org);
      }
      case "UNIT": {
        const unit = this.units.get(asset.scope_id);
        return unit !== undefined && this.canUseUnit(user, unit);
      }
      default: {
        const product = this.products.get(asset.scope_id);
        const unit = product && this.units.get(product.unit_id);
        return unit !== undefined && this.canUseUnit(user, unit);
      }
    }
  }

  /** The asset `id` if `user` may see it, else a 404 or 403. */
  visibleAsset(user: User, id: string): Asset {
    const asset = this.assets.get(id);
    if (!asset) throw new HttpError(404, `Asset "${id}" does not exist`);
    if (!this.canSeeAsset(user, asset)) {
      throw new HttpError(403, `You do not have access to Asset "${id}"`);
    }
    return asset;
  }

  // Views: bodies of the real shapes.

  /** OrganisationAllDetail. */
  orgView(org: Org, user: User): Record<string, unknown> {
    return {
      caller_is_member: org.members.has(user.id),
      id: org.id,
      name: org.name,
      owner_id: org.owner_id,
      private: org.private,
      created: org.created,
      default_product_privacy: org.default_product_privacy,
      users: [...org.members].map((id) => ({ id })),
    };
  }

  /** UnitAllDetail. */
  unitView(unit: Unit, user: User): Record<string, unknown> {
    return {
      caller_is_member: unit.members.has(user.id),
      id: unit.id,
      name: unit.name,
      owner_id: unit.owner_id,
      private: unit.private,
      created: unit.created,
      billing_day: unit.billing_day,
      default_product_privacy: unit.default_product_privacy,
      users: [...unit.members].map((id) => ({ id })),
    };
  }

  /** ProductDmStorage or ProductDmProjectTier. */
  productView(product: Product, user: User): Record<string, unknown> {
    const unit = this.units.get(product.unit_id)!;
    const org = this.orgs.get(unit.org_id)!;
    const window = this.billingWindow(unit.billing_day, {});
    const used = this.productCharges(product, window).total;
    const storageUsed = this.storageItems(product, window)
      .reduce((sum, item) => sum + item.millicoins, 0);
    const isTier = product.type === "DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION";
    return {
      product: {
        id: product.id,
        created: product.created,
        type: product.type,
        ...(product.flavour ? { flavour: product.flavour } : {}),
        name: product.name,
      },
      organisation: this.orgView(org, user),
      unit: this.unitView(unit, user),
      storage: {
        size: { peak: "2.4 GiB", current: "2.1 GiB", unit_size: "1 GiB", units_used: 3 },
        coins: { used: coinsNumber(storageUsed), unit_cost: STORAGE_COST_MILLICOINS / 1000 },
      },
      coins: {
        allowance: product.allowance,
        limit: product.limit,
        used: coinsNumber(used),
        at_limit: product.limit > 0 && used / 1000 >= product.limit,
        current_burn_rate: 3.75,
        billing_prediction: coinsNumber(used * 2),
        billing_prediction_storage_contribution: coinsNumber(storageUsed * 2),
        billing_day: unit.billing_day,
        allowance_multiplier: 1,
        overspend_multiplier: 1.5,
        remaining_days: daysBetween(isoDay(this.now()), window.until),
      },
      ...(isTier ? { instance: { coins: { used: coinsNumber(used - storageUsed) } } } : {}),
      claimable: isTier,
      ...(product.claim ? { claim: product.claim } : {}),
    };
  }

  /** AssetDetail. */
  assetView(asset: Asset): Record<string, unknown> {
    return {
      creator: asset.creator,
      id: asset.id,
      name: asset.name,
      scope: asset.scope,
      scope_id: asset.scope_id,
      secret: asset.secret,
      disabled: asset.disabled,
      content: asset.content,
      created: asset.created,
      ...(asset.content_modified ? { content_modified: asset.content_modified } : {}),
      ...(asset.description !== undefined ? { description: asset.description } : {}),
      merchants: [...asset.merchants].map((id) => this.merchants.get(id)).filter(Boolean),
    };
  }

  // Charges: deterministic amounts, in thousandths of a coin to keep sums exact.

  /** The charge window: `from`/`until` when given, else the billing period `pbp` back. */
  billingWindow(
    billingDay: number,
    query: { from?: string; until?: string; pbp?: number },
  ): { from: string; until: string } {
    const today = this.now();
    const year = today.getUTCFullYear();
    let month = today.getUTCMonth();
    if (today.getUTCDate() < billingDay) month -= 1;
    month += query.pbp ?? 0;
    const start = new Date(Date.UTC(year, month, billingDay));
    const end = new Date(Date.UTC(year, month + 1, billingDay));
    return { from: query.from ?? isoDay(start), until: query.until ?? isoDay(end) };
  }

  /** One storage charge per day of the window up to today. */
  storageItems(
    product: Product,
    window: { from: string; until: string },
  ): { item_number: number; date: string; millicoins: number }[] {
    if (product.type !== "DATA_MANAGER_STORAGE_SUBSCRIPTION") return [];
    const last = minDay(window.until, isoDay(addDays(this.now(), 1)));
    const items = [];
    for (let day = window.from, n = 1; day < last && n <= 400; day = nextDay(day), n++) {
      items.push({ item_number: n, date: day, millicoins: 3 * STORAGE_COST_MILLICOINS });
    }
    return items;
  }

  /** Two processing charges per project-tier product and window. */
  processingItems(
    product: Product,
    window: { from: string; until: string },
  ): { id: number; day: string; millicoins: number }[] {
    if (product.type !== "DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION") return [];
    if (window.from >= window.until) return [];
    return [1, 2].map((sqn) => ({ id: sqn, day: window.from, millicoins: 1500 * sqn }));
  }

  /** A product's charges in a window and their total. */
  productCharges(
    product: Product,
    window: { from: string; until: string },
  ): { processing: number; storage: number; total: number } {
    const processing = this.processingItems(product, window)
      .reduce((sum, item) => sum + item.millicoins, 0);
    const storage = this.storageItems(product, window)
      .reduce((sum, item) => sum + item.millicoins, 0);
    return { processing, storage, total: processing + storage };
  }
}

/** Thousandths of a coin as the API writes coins: a string with two decimals. */
export function coinsString(millicoins: number): string {
  return (millicoins / 1000).toFixed(2);
}

function coinsNumber(millicoins: number): number {
  return Math.round(millicoins / 10) / 100;
}

/** `YYYY-MM-DD` of a date, in UTC. */
export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * 86_400_000);
}

function nextDay(day: string): string {
  return isoDay(addDays(new Date(`${day}T00:00:00Z`), 1));
}

function minDay(a: string, b: string): string {
  return a < b ? a : b;
}

function daysBetween(from: string, until: string): number {
  const ms = new Date(`${until}T00:00:00Z`).getTime() - new Date(`${from}T00:00:00Z`).getTime();
  return Math.max(0, Math.round(ms / 86_400_000));
}
