/**
 * One case per operation: the parameters, the request the Account Server must receive, and what
 * a caller checks in the answer. Used by the client tests and the MCP tests alike, so adding an
 * operation means adding one case here.
 */
import assert from "node:assert/strict";
import { AS_ID_PATTERN } from "../src/api/mod.ts";
import type { StubServer } from "../src/stub/mod.ts";
import type { SeedIds } from "./_helpers.ts";

/** The seeded ids plus what a case's setup adds. */
export type Ids = SeedIds & Record<string, string | number>;
/** A decoded body. */
export type Msg = Record<string, unknown>;

/** One operation's case. */
export interface Case {
  /** The user whose token is sent; none for the operations that need no token. */
  as?: "admin" | "alice" | "bob";
  /** Changes the seed before the call; what it returns joins the ids. */
  setup?: (stub: StubServer, ids: SeedIds) => Record<string, string | number> | void;
  params: (ids: Ids) => Record<string, unknown>;
  sent: (ids: Ids) => { method: string; path: string; query?: Msg; body?: unknown };
  status: number;
  /** What the caller would check in `msg`, and in the stub's state afterwards. */
  check: (msg: Msg, stub: StubServer, ids: Ids) => void;
}

const none = () => ({});
const isEmpty = (msg: Msg) => assert.deepEqual(msg, {});
const list = (msg: Msg, key: string) => msg[key] as Msg[];

/** The cases, by operation name. */
export const CASES: Record<string, Case> = {
  ping: {
    params: none,
    sent: () => ({ method: "GET", path: "/version" }),
    status: 200,
    check: (msg) => assert.deepEqual(msg, { version: "4.4.0" }),
  },
  get_version: {
    params: none,
    sent: () => ({ method: "GET", path: "/version" }),
    status: 200,
    check: (msg) => assert.deepEqual(msg, { version: "4.4.0" }),
  },
  get_event_stream_version: {
    params: none,
    sent: () => ({ method: "GET", path: "/event-stream/version" }),
    status: 200,
    check: (msg) => assert.equal(msg.protocol, "WEBSOCKET"),
  },
  get_account: {
    as: "alice",
    params: none,
    sent: () => ({ method: "GET", path: "/user/account" }),
    status: 200,
    check: (msg) => {
      assert.deepEqual(msg.user, { id: "alice" });
      assert.equal(msg.caller_has_admin_privilege, false);
    },
  },
  get_merchants: {
    as: "bob",
    params: none,
    sent: () => ({ method: "GET", path: "/merchant" }),
    status: 200,
    check: (msg) => assert.deepEqual(list(msg, "merchants").map((m) => m.id), [1, 2]),
  },
  get_merchant: {
    as: "bob",
    params: () => ({ merchant_id: 2 }),
    sent: () => ({ method: "GET", path: "/merchant/2" }),
    status: 200,
    check: (msg) => assert.equal(msg.kind, "DATA_MANAGER"),
  },
  get_organisations: {
    as: "alice",
    params: () => ({ org_name: "Informatics Matters" }),
    sent: () => ({ method: "GET", path: "/organisation", query: { name: "Informatics Matters" } }),
    status: 200,
    check: (msg, _, ids) => {
      assert.equal(msg.count, 1);
      assert.equal(list(msg, "organisations")[0]!.id, ids.org);
    },
  },
  get_organisation: {
    as: "alice",
    params: (ids) => ({ org_id: ids.org }),
    sent: (ids) => ({ method: "GET", path: `/organisation/${ids.org}` }),
    status: 200,
    check: (msg) => assert.deepEqual(msg.users, [{ id: "alice" }]),
  },
  get_default_organisation: {
    as: "bob",
    params: none,
    sent: () => ({ method: "GET", path: "/default/organisation" }),
    status: 200,
    check: (msg, _, ids) => assert.equal(msg.id, ids.defaultOrg),
  },
  create_organisation: {
    as: "admin",
    params: () => ({ org_name: "Bob's Lab", org_owner: "bob" }),
    sent: () => ({
      method: "POST",
      path: "/organisation",
      body: { name: "Bob's Lab", owner: "bob" },
    }),
    status: 201,
    check: (msg, stub) => {
      assert.match(String(msg.id), AS_ID_PATTERN);
      assert.equal(stub.state.orgs.get(String(msg.id))?.owner_id, "bob");
    },
  },
  alter_organisation: {
    as: "alice",
    params: (ids) => ({ org_id: ids.org, name: "IM" }),
    sent: (ids) => ({ method: "PATCH", path: `/organisation/${ids.org}`, body: { name: "IM" } }),
    status: 200,
    check: (msg, stub, ids) => {
      isEmpty(msg);
      assert.equal(stub.state.orgs.get(ids.org)?.name, "IM");
    },
  },
  delete_organisation: {
    as: "admin",
    setup: (stub) => ({ empty: stub.state.addOrg("Empty", "bob", "admin").id }),
    params: (ids) => ({ org_id: ids.empty }),
    sent: (ids) => ({ method: "DELETE", path: `/organisation/${ids.empty}` }),
    status: 204,
    check: (msg, stub, ids) => {
      isEmpty(msg);
      assert.equal(stub.state.orgs.has(String(ids.empty)), false);
    },
  },
  get_organisation_units: {
    as: "alice",
    params: (ids) => ({ org_id: ids.org }),
    sent: (ids) => ({ method: "GET", path: `/organisation/${ids.org}/unit` }),
    status: 200,
    check: (msg, _, ids) => assert.deepEqual(list(msg, "units").map((u) => u.id), [ids.unit]),
  },
  get_organisation_users: {
    as: "alice",
    params: (ids) => ({ org_id: ids.org }),
    sent: (ids) => ({ method: "GET", path: `/organisation/${ids.org}/user` }),
    status: 200,
    check: (msg) => assert.deepEqual(msg.users, [{ id: "alice" }]),
  },
  add_user_to_organisation: {
    as: "alice",
    params: (ids) => ({ org_id: ids.org, username: "bob" }),
    sent: (ids) => ({ method: "PUT", path: `/organisation/${ids.org}/user/bob` }),
    status: 201,
    check: (msg, stub, ids) => {
      isEmpty(msg);
      assert.ok(stub.state.orgs.get(ids.org)?.members.has("bob"));
    },
  },
  remove_user_from_organisation: {
    as: "alice",
    setup: (stub, ids) => void stub.state.orgs.get(ids.org)!.members.add("bob"),
    params: (ids) => ({ org_id: ids.org, username: "bob" }),
    sent: (ids) => ({ method: "DELETE", path: `/organisation/${ids.org}/user/bob` }),
    status: 204,
    check: (_, stub, ids) => assert.equal(stub.state.orgs.get(ids.org)?.members.has("bob"), false),
  },
  get_organisation_charges: {
    as: "alice",
    params: (ids) => ({ org_id: ids.org, from: "2026-11-01", until: "2026-11-03" }),
    sent: (ids) => ({
      method: "GET",
      path: `/charges/organisation/${ids.org}`,
      query: { from: "2026-11-01", until: "2026-11-03" },
    }),
    status: 200,
    check: (msg, _, ids) => {
      assert.equal(msg.organisation_id, ids.org);
      // Two days of storage at 3.75 and two processing charges of 1.50 and 3.00.
      assert.equal(msg.coins, "12.00");
    },
  },
  get_available_units: {
    as: "alice",
    params: none,
    sent: () => ({ method: "GET", path: "/unit" }),
    status: 200,
    check: (msg, _, ids) => {
      const unitIds = list(msg, "units").flatMap((g) => (g.units as Msg[]).map((u) => u.id));
      assert.deepEqual(unitIds.sort(), [ids.alicePersonalUnit, ids.unit].sort());
    },
  },
  get_units: {
    as: "alice",
    params: () => ({ unit_name: "Chemistry" }),
    sent: () => ({ method: "GET", path: "/unit", query: { name: "Chemistry" } }),
    status: 200,
    check: (msg, _, ids) => {
      const unitIds = list(msg, "units").flatMap((g) => (g.units as Msg[]).map((u) => u.id));
      assert.deepEqual(unitIds, [ids.unit]);
    },
  },
  get_unit: {
    as: "alice",
    params: (ids) => ({ unit_id: ids.unit }),
    sent: (ids) => ({ method: "GET", path: `/unit/${ids.unit}` }),
    status: 200,
    check: (msg) => assert.equal(msg.billing_day, 3),
  },
  create_unit: {
    as: "alice",
    params: (ids) => ({ unit_name: "Biology", org_id: ids.org, billing_day: 15 }),
    sent: (ids) => ({
      method: "POST",
      path: `/organisation/${ids.org}/unit`,
      body: { name: "Biology", billing_day: 15 },
    }),
    status: 201,
    check: (msg, stub, ids) => {
      const unit = stub.state.units.get(String(msg.id));
      assert.equal(unit?.org_id, ids.org);
      assert.equal(unit?.billing_day, 15);
    },
  },
  alter_unit: {
    as: "alice",
    params: (ids) => ({ unit_id: ids.unit, default_product_privacy: "ALWAYS_PRIVATE" }),
    sent: (ids) => ({
      method: "PATCH",
      path: `/unit/${ids.unit}`,
      body: { default_product_privacy: "ALWAYS_PRIVATE" },
    }),
    status: 200,
    check: (msg, stub, ids) => {
      isEmpty(msg);
      assert.equal(stub.state.units.get(ids.unit)?.default_product_privacy, "ALWAYS_PRIVATE");
    },
  },
  delete_unit: {
    as: "alice",
    setup: (stub, ids) => ({ empty: stub.state.addUnit(ids.org, "Empty", 1, "alice", "alice").id }),
    params: (ids) => ({ unit_id: ids.empty }),
    sent: (ids) => ({ method: "DELETE", path: `/unit/${ids.empty}` }),
    status: 204,
    check: (_, stub, ids) => assert.equal(stub.state.units.has(String(ids.empty)), false),
  },
  get_unit_users: {
    as: "alice",
    params: (ids) => ({ unit_id: ids.unit }),
    sent: (ids) => ({ method: "GET", path: `/unit/${ids.unit}/user` }),
    status: 200,
    check: (msg) => assert.deepEqual(msg.users, [{ id: "alice" }]),
  },
  add_user_to_unit: {
    as: "alice",
    params: (ids) => ({ unit_id: ids.unit, username: "bob" }),
    sent: (ids) => ({ method: "PUT", path: `/unit/${ids.unit}/user/bob` }),
    status: 201,
    check: (_, stub, ids) => assert.ok(stub.state.units.get(ids.unit)?.members.has("bob")),
  },
  remove_user_from_unit: {
    as: "alice",
    setup: (stub, ids) => void stub.state.units.get(ids.unit)!.members.add("bob"),
    params: (ids) => ({ unit_id: ids.unit, username: "bob" }),
    sent: (ids) => ({ method: "DELETE", path: `/unit/${ids.unit}/user/bob` }),
    status: 204,
    check: (_, stub, ids) =>
      assert.equal(stub.state.units.get(ids.unit)?.members.has("bob"), false),
  },
  get_unit_charges: {
    as: "alice",
    params: (ids) => ({ unit_id: ids.unit, pbp: -1 }),
    sent: (ids) => ({ method: "GET", path: `/charges/unit/${ids.unit}`, query: { pbp: "-1" } }),
    status: 200,
    check: (msg) => {
      // The stub's clock is 2026-11-28 and the unit bills on the 3rd: the previous period.
      assert.equal(msg.from, "2026-10-03");
      assert.equal(msg.until, "2026-11-03");
      assert.equal((msg.products as Msg[]).length, 2);
    },
  },
  get_personal_unit: {
    as: "alice",
    params: none,
    sent: () => ({ method: "GET", path: "/personal-unit" }),
    status: 200,
    check: (msg, _, ids) => assert.equal(msg.id, ids.alicePersonalUnit),
  },
  create_personal_unit: {
    as: "alice",
    setup: (stub, ids) => void stub.state.units.delete(ids.alicePersonalUnit),
    params: () => ({ billing_day: 7 }),
    sent: () => ({ method: "PUT", path: "/personal-unit", body: { billing_day: 7 } }),
    status: 201,
    check: (msg, stub, ids) => {
      assert.equal(msg.organisation_id, ids.defaultOrg);
      assert.equal(stub.state.units.get(String(msg.id))?.owner_id, "alice");
    },
  },
  delete_personal_unit: {
    as: "bob",
    params: none,
    sent: () => ({ method: "DELETE", path: "/personal-unit" }),
    status: 204,
    check: (_, stub) =>
      assert.equal([...stub.state.units.values()].some((u) => u.owner_id === "bob"), false),
  },
  get_available_products: {
    as: "alice",
    params: none,
    sent: () => ({ method: "GET", path: "/product" }),
    status: 200,
    check: (msg) => assert.equal(msg.count, 2),
  },
  get_product: {
    as: "alice",
    params: (ids) => ({ product_id: ids.storageProduct }),
    sent: (ids) => ({ method: "GET", path: `/product/${ids.storageProduct}` }),
    status: 200,
    check: (msg, _, ids) => {
      const product = msg.product as Record<string, Msg>;
      assert.equal(product.product!.id, ids.storageProduct);
      assert.equal(product.coins!.allowance, 500);
    },
  },
  get_products_for_unit: {
    as: "alice",
    params: (ids) => ({ unit_id: ids.unit }),
    sent: (ids) => ({ method: "GET", path: `/product/unit/${ids.unit}` }),
    status: 200,
    check: (msg) => assert.equal(msg.count, 2),
  },
  get_products_for_organisation: {
    as: "alice",
    params: (ids) => ({ org_id: ids.org }),
    sent: (ids) => ({ method: "GET", path: `/product/organisation/${ids.org}` }),
    status: 200,
    check: (msg) => assert.equal(msg.count, 2),
  },
  get_product_types: {
    as: "bob",
    params: none,
    sent: () => ({ method: "GET", path: "/product-type" }),
    status: 200,
    check: (msg) => assert.equal(msg.count, 5),
  },
  get_product_default_storage_cost: {
    as: "bob",
    params: none,
    sent: () => ({ method: "GET", path: "/product-default-storage-cost" }),
    status: 200,
    check: (msg) => assert.equal((msg.default_storage_cost as Msg).cost, "1.25"),
  },
  create_product: {
    as: "alice",
    params: (ids) => ({
      product_name: "More storage",
      unit_id: ids.unit,
      product_type: "DATA_MANAGER_STORAGE_SUBSCRIPTION",
      allowance: 100,
      limit: 200,
    }),
    sent: (ids) => ({
      method: "POST",
      path: `/product/unit/${ids.unit}`,
      body: {
        name: "More storage",
        type: "DATA_MANAGER_STORAGE_SUBSCRIPTION",
        allowance: 100,
        limit: 200,
      },
    }),
    status: 201,
    check: (msg, stub) => assert.equal(stub.state.products.get(String(msg.id))?.limit, 200),
  },
  alter_product: {
    as: "alice",
    params: (ids) => ({ product_id: ids.storageProduct, allowance: 600 }),
    sent: (ids) => ({
      method: "PATCH",
      path: `/product/${ids.storageProduct}`,
      body: { allowance: 600 },
    }),
    status: 200,
    check: (_, stub, ids) =>
      assert.equal(stub.state.products.get(ids.storageProduct)?.allowance, 600),
  },
  delete_product: {
    as: "alice",
    params: (ids) => ({ product_id: ids.tierProduct }),
    sent: (ids) => ({ method: "DELETE", path: `/product/${ids.tierProduct}` }),
    status: 204,
    check: (_, stub, ids) => assert.equal(stub.state.products.has(ids.tierProduct), false),
  },
  get_product_charges: {
    as: "alice",
    params: (ids) => ({ product_id: ids.storageProduct, from: "2026-11-01", until: "2026-11-03" }),
    sent: (ids) => ({
      method: "GET",
      path: `/charges/product/${ids.storageProduct}`,
      query: { from: "2026-11-01", until: "2026-11-03" },
    }),
    status: 200,
    check: (msg) => {
      assert.equal((msg.storage_charges as Msg).num_items, 2);
      assert.equal(msg.coins, "7.50");
    },
  },
  get_available_assets: {
    as: "alice",
    params: (ids) => ({ scope_id: ids.unit }),
    sent: (ids) => ({ method: "GET", path: "/asset", query: { unit_id: ids.unit } }),
    status: 200,
    check: (msg, _, ids) => assert.deepEqual(list(msg, "assets").map((a) => a.id), [ids.unitAsset]),
  },
  get_asset: {
    as: "alice",
    params: (ids) => ({ asset_id: ids.aliceAsset }),
    sent: (ids) => ({ method: "GET", path: `/asset/${ids.aliceAsset}` }),
    status: 200,
    check: (msg) => assert.equal(msg.name, "api-key"),
  },
  create_asset: {
    as: "alice",
    params: (ids) => ({
      name: "token",
      description: "A token",
      scope: "UNIT",
      scope_id: ids.unit,
      content_string: "abc",
      is_secret: true,
    }),
    sent: (ids) => ({
      method: "POST",
      path: "/asset",
      body: {
        name: "token",
        scope: "UNIT",
        secret: "true",
        description: "A token",
        scope_id: ids.unit,
        content_string: "abc",
      },
    }),
    status: 201,
    check: (msg, stub) => {
      const asset = stub.state.assets.get(String(msg.id));
      assert.equal(asset?.content, "abc");
      assert.equal(asset?.secret, true);
    },
  },
  alter_asset: {
    as: "alice",
    params: (ids) => ({ asset_id: ids.aliceAsset, description: "Rotated", content_string: "x" }),
    sent: (ids) => ({
      method: "PATCH",
      path: `/asset/${ids.aliceAsset}`,
      body: { description: "Rotated", content_string: "x" },
    }),
    status: 200,
    check: (_, stub, ids) => assert.equal(stub.state.assets.get(ids.aliceAsset)?.content, "x"),
  },
  delete_asset: {
    as: "alice",
    params: (ids) => ({ asset_id: ids.aliceAsset }),
    sent: (ids) => ({ method: "DELETE", path: `/asset/${ids.aliceAsset}` }),
    status: 204,
    check: (_, stub, ids) => assert.equal(stub.state.assets.has(ids.aliceAsset), false),
  },
  enable_asset: {
    as: "alice",
    setup: (stub, ids) => void (stub.state.assets.get(ids.aliceAsset)!.disabled = true),
    params: (ids) => ({ asset_id: ids.aliceAsset }),
    sent: (ids) => ({ method: "PATCH", path: `/asset/${ids.aliceAsset}/enable` }),
    status: 204,
    check: (_, stub, ids) => assert.equal(stub.state.assets.get(ids.aliceAsset)?.disabled, false),
  },
  disable_asset: {
    as: "alice",
    params: (ids) => ({ asset_id: ids.aliceAsset }),
    sent: (ids) => ({ method: "PATCH", path: `/asset/${ids.aliceAsset}/disable` }),
    status: 204,
    check: (_, stub, ids) => assert.equal(stub.state.assets.get(ids.aliceAsset)?.disabled, true),
  },
  attach_asset: {
    as: "alice",
    params: (ids) => ({ asset_id: ids.aliceAsset, m_id: 1 }),
    sent: (ids) => ({
      method: "PATCH",
      path: `/asset/${ids.aliceAsset}/attach`,
      query: { m_id: "1" },
    }),
    status: 204,
    check: (_, stub, ids) =>
      assert.deepEqual([...stub.state.assets.get(ids.aliceAsset)!.merchants], [1]),
  },
  detach_asset: {
    as: "alice",
    setup: (stub, ids) => void stub.state.assets.get(ids.aliceAsset)!.merchants.add(2),
    params: (ids) => ({ asset_id: ids.aliceAsset, m_id: 2 }),
    sent: (ids) => ({
      method: "PATCH",
      path: `/asset/${ids.aliceAsset}/detach`,
      query: { m_id: "2" },
    }),
    status: 204,
    check: (_, stub, ids) => assert.equal(stub.state.assets.get(ids.aliceAsset)!.merchants.size, 0),
  },
  get_event_stream: {
    as: "alice",
    params: none,
    sent: () => ({ method: "GET", path: "/event-stream" }),
    status: 200,
    check: (msg, stub) =>
      assert.match(
        String(msg.location),
        new RegExp(`^${stub.origin.replace("http", "ws")}/event-stream/`),
      ),
  },
  create_event_stream: {
    as: "bob",
    setup: (stub, ids) => void stub.state.streams.delete(ids.bobStream),
    params: () => ({ event_format: "PROTOCOL_STRING" }),
    sent: () => ({ method: "POST", path: "/event-stream", body: { format: "PROTOCOL_STRING" } }),
    status: 201,
    check: (msg) => assert.equal(msg.format, "PROTOCOL_STRING"),
  },
  delete_event_stream: {
    as: "bob",
    params: (ids) => ({ event_stream_id: ids.bobStream }),
    sent: (ids) => ({ method: "DELETE", path: `/event-stream/${ids.bobStream}` }),
    status: 204,
    check: (_, stub, ids) => assert.equal(stub.state.streams.has(ids.bobStream), false),
  },
  get_charges: {
    as: "admin",
    params: () => ({ from: "2026-11-01", until: "2026-11-03", pbp: 0 }),
    sent: () => ({
      method: "GET",
      path: "/charges",
      query: { from: "2026-11-01", until: "2026-11-03", pbp: "0" },
    }),
    status: 200,
    check: (msg) => {
      assert.equal(msg.coins, "12.00");
      assert.equal(msg.count, 2);
    },
  },
  get_actions: {
    as: "admin",
    params: (ids) => ({ format: "JSON_STRING", unit_id: ids.unit }),
    sent: (ids) => ({
      method: "GET",
      path: "/action",
      query: { format: "JSON_STRING", unit_id: ids.unit },
    }),
    status: 200,
    check: (msg) => {
      const actions = list(msg, "actions").map((a) => JSON.parse(String(a.content)).action);
      assert.deepEqual(actions, ["create_unit", "create_product", "create_product"]);
    },
  },
};

/** The stub's clock in these tests. */
export const STUB_NOW = new Date("2026-11-28T10:00:00Z");
