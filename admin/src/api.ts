// The one door to the Emporium API. Tokens live in this module's memory only: never in
// localStorage, sessionStorage or cookies, so a reload signs the user out.
import { HttpError } from "react-admin";

export const API = "/api/v1";

type Tokens = { access: string; refresh: string };
let tokens: Tokens | null = null;
let refreshing: Promise<boolean> | null = null;

export type Problem = { title?: string; detail?: string; code?: string; status?: number };

export function signedIn(): boolean {
  return tokens !== null;
}

export function setTokens(body: { access_token: string; refresh_token: string }): void {
  tokens = { access: body.access_token, refresh: body.refresh_token };
}

export function clearTokens(): void {
  tokens = null;
}

function problemMessage(status: number, body: unknown): string {
  const p = (body ?? {}) as Problem;
  return p.detail || p.title || `The server answered ${status}.`;
}

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (tokens) headers["Authorization"] = `Bearer ${tokens.access}`;
  return fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
}

async function refreshTokens(): Promise<boolean> {
  if (!tokens) return false;
  const current = tokens.refresh;
  const res = await fetch(`${API}/auth/refresh`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: current }),
    cache: "no-store",
  });
  if (!res.ok) {
    tokens = null;
    return false;
  }
  setTokens(await res.json());
  return true;
}

/** Call the API; a problem answer becomes an HttpError whose message is the problem's detail. */
export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  let res = await send(method, path, body);
  if (res.status === 401 && tokens && !path.startsWith("/auth/login")) {
    refreshing ??= refreshTokens().finally(() => (refreshing = null));
    if (await refreshing) res = await send(method, path, body);
  }
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) throw new HttpError(problemMessage(res.status, parsed), res.status, parsed);
  return parsed as T;
}

export function query(params: Record<string, unknown>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** An amount in minor units as text in its currency (display only; integer digits, no floats). */
export function money(amount: number | null | undefined, currency = "USD"): string {
  if (amount === null || amount === undefined) return "";
  let digits = 2;
  try {
    digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
      .maximumFractionDigits ?? 2;
  } catch {
    digits = 2;
  }
  const negative = amount < 0;
  const raw = String(Math.abs(Math.trunc(amount))).padStart(digits + 1, "0");
  const major = digits ? raw.slice(0, raw.length - digits) : raw;
  const minor = digits ? `.${raw.slice(raw.length - digits)}` : "";
  return `${negative ? "-" : ""}${major.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}${minor} ${currency}`;
}
