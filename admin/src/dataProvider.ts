// react-admin's data calls mapped onto the Emporium API: keyset pages ({items, next_cursor},
// ?limit&cursor) become react-admin's "partial pagination" (pageInfo, no total).
import type { DataProvider, GetListParams, RaRecord } from "react-admin";
import { api, query } from "./api";

type Config = { path: string; writable: string[]; createOnly?: string[] };

// What each screen may send: the API refuses unknown fields (422), so read-only fields are
// dropped before a create or an update.
export const RESOURCES: Record<string, Config> = {
  products: {
    path: "/products",
    writable: ["title", "slug", "description", "category_id", "brand", "tags", "published", "images", "tax_class"],
    createOnly: ["variants"],
  },
  categories: { path: "/categories", writable: ["name", "slug", "parent_id", "description"] },
  orders: { path: "/orders", writable: [] },
  users: { path: "/users", writable: ["roles", "is_active"], createOnly: ["email", "password", "first_name", "last_name"] },
  promotions: {
    path: "/promotions",
    writable: ["name", "code", "type", "value", "min_subtotal", "starts_at", "ends_at", "usage_limit",
      "usage_limit_per_customer", "combinable", "active"],
  },
  "gift-cards": { path: "/gift-cards", writable: [], createOnly: ["initial_balance", "currency", "expires_at", "note"] },
  "shipping-zones": { path: "/shipping-zones", writable: ["name", "countries", "regions"] },
  "shipping-methods": {
    path: "/shipping-methods",
    writable: ["name", "carrier", "price", "free_over", "min_weight_grams", "max_weight_grams", "tax_class", "active"],
    createOnly: ["zone_id"],
  },
  "tax-rates": { path: "/tax-rates", writable: ["country", "region", "tax_class", "rate_bp", "name"] },
  webhooks: { path: "/webhooks", writable: ["url", "events", "description", "is_active"] },
  jobs: { path: "/jobs", writable: [] },
  "api-keys": { path: "/api-keys", writable: [], createOnly: ["name", "scopes", "expires_at"] },
  "audit-events": { path: "/audit-events", writable: [] },
  backups: { path: "/backups", writable: [] },
};

function config(resource: string): Config {
  const c = RESOURCES[resource];
  if (!c) throw new Error(`Unknown resource ${resource}`);
  return c;
}

// cursor of page N for one (resource, filter, perPage); page 1 has none.
const cursors = new Map<string, (string | null)[]>();

function pick(data: Record<string, unknown>, fields: string[], previous?: Record<string, unknown>) {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (!(f in data)) continue;
    if (previous && JSON.stringify(previous[f]) === JSON.stringify(data[f])) continue;
    out[f] = data[f] === "" ? null : data[f];
  }
  return out;
}

async function getList(resource: string, params: GetListParams) {
  const { path } = config(resource);
  const perPage = params.pagination?.perPage ?? 20;
  const page = params.pagination?.page ?? 1;
  const filter = { ...(params.filter ?? {}) };
  const key = JSON.stringify([resource, filter, perPage]);
  const known = cursors.get(key) ?? [null];
  const usable = page - 1 < known.length ? page : 1;
  const cursor = known[usable - 1];
  const body = await api("GET", path + query({ ...filter, limit: Math.min(perPage, 100), cursor }));
  if (Array.isArray(body)) {
    return { data: body as RaRecord[], total: body.length };
  }
  const next: string | null = body.next_cursor ?? null;
  known[usable] = next;
  cursors.set(key, known.slice(0, usable + 1));
  return {
    data: body.items as RaRecord[],
    pageInfo: { hasNextPage: next !== null, hasPreviousPage: usable > 1 },
  };
}

export const dataProvider: DataProvider = {
  getList: (resource, params) => getList(resource, params) as any,
  getOne: async (resource, params) => ({
    data: await api("GET", `${config(resource).path}/${encodeURIComponent(String(params.id))}`),
  }),
  getMany: async (resource, params) => {
    const c = config(resource);
    if (resource === "categories") {
      const all: RaRecord[] = await api("GET", c.path);
      return { data: all.filter((r) => params.ids.includes(r.id)) };
    }
    const data = await Promise.all(params.ids.map((id) => api("GET", `${c.path}/${id}`)));
    return { data };
  },
  getManyReference: async (resource, params) =>
    getList(resource, { ...params, filter: { ...params.filter, [params.target]: params.id } }) as any,
  create: async (resource, params) => {
    const c = config(resource);
    const body = pick(params.data, [...c.writable, ...(c.createOnly ?? [])]);
    const data = await api("POST", c.path, body);
    return { data: { ...data, id: data.id ?? data.prefix } };
  },
  update: async (resource, params) => {
    const c = config(resource);
    const body = pick(params.data, c.writable, params.previousData);
    const data = await api("PATCH", `${c.path}/${params.id}`, body);
    return { data };
  },
  updateMany: async () => {
    throw new Error("Not supported");
  },
  delete: async (resource, params) => {
    await api("DELETE", `${config(resource).path}/${params.id}`);
    return { data: params.previousData as any };
  },
  deleteMany: async (resource, params) => {
    for (const id of params.ids) await api("DELETE", `${config(resource).path}/${id}`);
    return { data: params.ids };
  },
};
