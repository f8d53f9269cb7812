/**
 * The code mode benchmark's tasks: each as the tool calls an assistant would make, and as the
 * program it would pass to `run_program` (the README shows the same programs).
 *
 * @module
 */

/** Calls a tool and returns its msg. */
// deno-lint-ignore no-explicit-any -- a tool's msg is whatever JSON the AS answered
export type Call = (name: string, args?: Record<string, unknown>) => Promise<any>;

/** One task, two ways. */
export interface Task {
  name: string;
  tools(call: Call): Promise<unknown>;
  program: string;
}

type Row = Record<string, string>;
const byText = (a: Row, b: Row) => JSON.stringify(a).localeCompare(JSON.stringify(b));

/** The five tasks. */
export const TASKS: Task[] = [
  {
    name: "Units with a Product over its allowance, and their owners",
    async tools(call) {
      const over: Row[] = [];
      for (const org of (await call("get_organisations")).organisations) {
        const { products } = await call("get_products_for_organisation", { org_id: org.id });
        for (const p of products) {
          if (p.coins.allowance > 0 && p.coins.used > p.coins.allowance) {
            over.push({ unit: p.unit.name, owner: p.unit.owner_id, product: p.product.name });
          }
        }
      }
      return over.sort(byText);
    },
    program: `const over = [];
for (const org of (await as.get_organisations()).msg.organisations) {
  const { products } = (await as.get_products_for_organisation({ org_id: org.id })).msg;
  for (const p of products) {
    if (p.coins.allowance > 0 && p.coins.used > p.coins.allowance) {
      over.push({ unit: p.unit.name, owner: p.unit.owner_id, product: p.product.name });
    }
  }
}
return over.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));`,
  },
  {
    name: "Every Organisation's members with their Units",
    async tools(call) {
      const answer: Record<string, Record<string, string[]>> = {};
      for (const org of (await call("get_organisations")).organisations) {
        const { users } = await call("get_organisation_users", { org_id: org.id });
        const { units } = await call("get_organisation_units", { org_id: org.id });
        answer[org.name] = {};
        for (const user of users) {
          answer[org.name]![user.id] = units
            .filter((u: { users: { id: string }[] }) => u.users.some((m) => m.id === user.id))
            .map((u: { name: string }) => u.name).sort();
        }
      }
      return answer;
    },
    program: `const answer: Record<string, Record<string, string[]>> = {};
for (const org of (await as.get_organisations()).msg.organisations) {
  const [users, units] = await Promise.all([
    as.get_organisation_users({ org_id: org.id }),
    as.get_organisation_units({ org_id: org.id }),
  ]);
  answer[org.name] = {};
  for (const user of users.msg.users) {
    answer[org.name][user.id] = units.msg.units
      .filter((u) => u.users.some((m) => m.id === user.id))
      .map((u) => u.name).sort();
  }
}
return answer;`,
  },
  {
    name: "Charges per Unit for the last three billing periods",
    async tools(call) {
      const answer: Record<string, string[]> = {};
      for (const group of (await call("get_available_units")).units) {
        for (const unit of group.units) {
          const coins = [];
          for (const pbp of [0, -1, -2]) {
            coins.push((await call("get_unit_charges", { unit_id: unit.id, pbp })).coins);
          }
          answer[`${group.organisation.name} / ${unit.name}`] = coins;
        }
      }
      return answer;
    },
    program: `const answer: Record<string, string[]> = {};
for (const group of (await as.get_available_units()).msg.units) {
  for (const unit of group.units) {
    const periods = await Promise.all([0, -1, -2].map((pbp) =>
      as.get_unit_charges({ unit_id: unit.id, pbp })
    ));
    answer[\`\${group.organisation.name} / \${unit.name}\`] = periods.map((p) => p.msg.coins);
  }
}
return answer;`,
  },
  {
    name: "Assets attached to each Merchant",
    async tools(call) {
      const { merchants } = await call("get_merchants");
      const { assets } = await call("get_available_assets");
      const answer: Record<string, string[]> = {};
      for (const m of merchants) {
        answer[m.name] = assets
          .filter((a: { merchants: { id: number }[] }) => a.merchants.some((x) => x.id === m.id))
          .map((a: { name: string }) => a.name).sort();
      }
      return answer;
    },
    program: `const [{ msg: { merchants } }, { msg: { assets } }] = await Promise.all([
  as.get_merchants(),
  as.get_available_assets(),
]);
return Object.fromEntries(merchants.map((m) => [
  m.name,
  assets.filter((a) => a.merchants.some((x) => x.id === m.id)).map((a) => a.name).sort(),
]));`,
  },
  {
    name: "Clean up the Evaluation Unit and its Products",
    async tools(call) {
      const found = await call("get_units", { unit_name: "Evaluation" });
      const unitId = found.units[0].units[0].id;
      const { products } = await call("get_products_for_unit", { unit_id: unitId });
      const deleted = [];
      for (const p of products) {
        await call("delete_product", { product_id: p.product.id });
        deleted.push(p.product.name);
      }
      await call("delete_unit", { unit_id: unitId });
      return { unit: unitId, products: deleted.sort() };
    },
    program: `const found = (await as.get_units({ unit_name: "Evaluation" })).msg;
const unitId = found.units[0].units[0].id;
const { products } = (await as.get_products_for_unit({ unit_id: unitId })).msg;
for (const p of products) {
  const rv = await as.delete_product({ product_id: p.product.id });
  if (!rv.success) throw new Error(rv.msg.error);
}
const rv = await as.delete_unit({ unit_id: unitId });
if (!rv.success) throw new Error(rv.msg.error);
return { unit: unitId, products: products.map((p) => p.product.name).sort() };`,
  },
];
