/**
 * The demo's data beyond the seed, so the README's code-mode programs and event-stream reads have
 * something to find: three more Organisations of Units with storage and project Products (some
 * storage over a small allowance), an "Evaluation" Unit with two evaluation Products, Assets
 * attached to the Merchants, and three processing charges on the streams.
 *
 * @module
 */
import type { StubEventStreams } from "./_events.ts";
import type { StubState } from "./_state.ts";

/** Adds the demo's Organisations, Units, Products and asset attachments to the seed data. */
export function addDemoData(state: StubState): void {
  const s = state;
  for (let i = 1; i <= 3; i++) {
    const org = s.addOrg(`Bench Org ${i}`, "alice", "admin");
    org.members.add("bob");
    for (let j = 1; j <= 3; j++) {
      const owner = j % 2 ? "alice" : "bob";
      const unit = s.addUnit(org.id, `Unit ${i}.${j}`, j, owner, "admin");
      if (j === 3) unit.members.add(owner === "alice" ? "bob" : "alice");
      const allowance = (i + j) % 3 === 0 ? 1 : 500;
      s.addProduct(unit.id, {
        name: `Storage ${i}.${j}`,
        type: "DATA_MANAGER_STORAGE_SUBSCRIPTION",
        allowance,
        limit: 1000,
      }, "admin");
      s.addProduct(unit.id, {
        name: `Project ${i}.${j}`,
        type: "DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION",
        flavour: "BRONZE",
        allowance: 0,
        limit: 0,
      }, "admin");
    }
  }
  const first = [...s.orgs.values()].find((o) => o.name === "Bench Org 1")!;
  const evaluation = s.addUnit(first.id, "Evaluation", 1, "alice", "admin");
  for (const n of [1, 2]) {
    s.addProduct(evaluation.id, {
      name: `Evaluation ${n}`,
      type: "DATA_MANAGER_PROJECT_TIER_SUBSCRIPTION",
      flavour: "EVALUATION",
      allowance: 0,
      limit: 0,
    }, "admin");
  }
  const assets = [...s.assets.values()];
  assets[0]!.merchants.add(1);
  assets[1]!.merchants.add(1);
  assets[1]!.merchants.add(2);
  assets[2]!.merchants.add(2);
}

/** Three processing charges to the Chemistry storage Product, by the demo's admin: their streams and its Unit's users'. */
export function publishDemoEvents(state: StubState, events: StubEventStreams): void {
  const product = [...state.products.values()].find((p) => p.name === "Chemistry storage");
  if (!product) return;
  for (const [name, coins] of [["fragment-screen", "12"], ["docking", "40"], ["storage", "3"]]) {
    events.charge(product.id, { coins: coins!, name: name!, user: "admin" });
  }
}
