import { StrictMode, useEffect, useState, type ReactNode } from "react";
import { createRoot } from "react-dom/client";
import createCache from "@emotion/cache";
import { CacheProvider } from "@emotion/react";
import { Admin, AppBar, CustomRoutes, Layout, Logout, Menu, Resource, UserMenu, defaultTheme, useGetIdentity, memoryStore, type LayoutProps } from "react-admin";
import { Route } from "react-router-dom";
import { Alert, Box, Card, CardContent, Grid, Typography } from "@mui/material";
import { api, money } from "./api";
import { authProvider, LoginPage, MfaEnrolPage } from "./auth";
import { dataProvider } from "./dataProvider";
import * as catalog from "./catalog";
import * as orders from "./orders";
import * as people from "./people";
import * as settings from "./settings";

// MUI styles are injected by emotion as <style> elements; the server's CSP allows only those
// carrying the per-response nonce that it also writes into this meta tag (no 'unsafe-inline').
const nonce = document.querySelector('meta[name="csp-nonce"]')?.getAttribute("content") ?? undefined;
const cache = createCache({ key: "ema", nonce, prepend: true });

// Darker blues than the default theme's, so labels and links pass WCAG AA contrast (4.5:1)
// on white and on the filled inputs' grey.
const theme = {
  ...defaultTheme,
  palette: { ...defaultTheme.palette, primary: { main: "#0d47a1" }, secondary: { main: "#263238" } },
  components: {
    ...defaultTheme.components,
    // The "nothing here yet" page is drawn in the disabled grey by default: too faint to read.
    RaEmpty: { styleOverrides: { root: { "& .RaEmpty-message": { color: "rgba(0, 0, 0, 0.7)" } } } },
  },
};

type Figure = { label: string; value: ReactNode };

async function figure(label: string, load: () => Promise<ReactNode>): Promise<Figure> {
  try {
    return { label, value: await load() };
  } catch (e: any) {
    const text = e?.status === 404 ? "not available on this server" : e?.status === 403 ? "admins only" : e?.message;
    return { label, value: <Typography variant="body2" component="span">{text}</Typography> };
  }
}

const count = (body: any) => `${body.items.length}${body.next_cursor ? "+" : ""}`;

async function todaysOrders(): Promise<ReactNode> {
  const start = new Date();
  start.setHours(0, 0, 0, 0);
  let cursor: string | null = null;
  let orders = 0;
  const revenue = new Map<string, number>();
  for (let page = 0; page < 10; page++) {
    const body: any = await api("GET", `/orders?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    const today = body.items.filter((o: any) => new Date(o.created_at) >= start);
    for (const o of today) {
      orders++;
      revenue.set(o.currency, (revenue.get(o.currency) ?? 0) + o.paid_total - o.refunded_total);
    }
    cursor = body.next_cursor;
    if (!cursor || today.length < body.items.length) break;
  }
  const paid = [...revenue].map(([c, v]) => money(v, c)).join(", ") || money(0);
  return `${orders} orders · ${paid} received`;
}

async function lowStock(): Promise<ReactNode> {
  const body: any = await api("GET", "/products?limit=100&sort=-created_at");
  const low = body.items.flatMap((p: any) => p.variants.filter((v: any) => v.stock !== null && v.stock <= 5).map((v: any) => `${p.title} / ${v.title}: ${v.stock}`));
  if (!low.length) return "none (5 or fewer units)";
  return <span title={low.join("\n")}>{low.length} variants at 5 units or fewer</span>;
}

async function failingWebhooks(): Promise<ReactNode> {
  const hooks: any = await api("GET", "/webhooks?limit=20");
  let failing = 0;
  for (const h of hooks.items) {
    const d: any = await api("GET", `/webhooks/${h.id}/deliveries?limit=20`);
    if (d.items.some((x: any) => x.status !== "delivered" && x.attempts > 0)) failing++;
  }
  return `${failing} of ${hooks.items.length} endpoints`;
}

async function lastBackup(): Promise<ReactNode> {
  const body: any = await api("GET", "/backups?limit=1");
  const last = (Array.isArray(body) ? body : body.items)[0];
  return last ? `${new Date(last.created_at ?? last.started_at).toLocaleString()} (${last.status ?? "done"})` : "never";
}

function Dashboard() {
  const [figures, setFigures] = useState<Figure[] | null>(null);
  useEffect(() => {
    Promise.all([
      figure("Today's orders and revenue", todaysOrders),
      figure("Orders waiting to ship", async () => count(await api("GET", "/orders?status=paid&limit=100"))),
      figure("Low stock", lowStock),
      figure("Dead jobs", async () => count(await api("GET", "/jobs?status=dead&limit=100"))),
      figure("Failing webhooks", failingWebhooks),
      figure("Last backup", lastBackup),
    ]).then(setFigures);
  }, []);
  return (
    <Box sx={{ p: 2 }}>
      <Typography variant="h4" component="h1" gutterBottom>Dashboard</Typography>
      {!figures ? <Typography>Loading…</Typography> : (
        <Grid container spacing={2}>
          {figures.map((f) => (
            <Grid key={f.label} size={{ xs: 12, sm: 6, md: 4 }}>
              <Card component="section" aria-label={f.label}>
                <CardContent>
                  <Typography variant="subtitle2" component="h2" color="text.secondary">{f.label}</Typography>
                  <Typography variant="h6" component="p" data-testid={f.label}>{f.value}</Typography>
                </CardContent>
              </Card>
            </Grid>
          ))}
        </Grid>
      )}
      <Alert severity="info" sx={{ mt: 2 }}>Personal data is masked; every reveal is audited.</Alert>
    </Box>
  );
}

function AppMenu() {
  return (
    <Menu>
      <Menu.DashboardItem />
      <Menu.ResourceItems />
      <Menu.Item to="/import" primaryText="Import" />
      <Menu.Item to="/reviews" primaryText="Reviews" />
      <Menu.Item to="/backups" primaryText="Backups" />
      <Menu.Item to="/sessions" primaryText="My sessions" />
    </Menu>
  );
}
// The user menu's accessible name is the text it shows (WCAG 2.5.3, label in name).
function AppUserMenu() {
  const { identity } = useGetIdentity();
  return (
    <UserMenu label={identity?.fullName ?? "Profile"}>
      <Logout />
    </UserMenu>
  );
}
const AppTopBar = () => <AppBar userMenu={<AppUserMenu />} />;
const AppLayout = (props: LayoutProps) => <Layout {...props} menu={AppMenu} appBar={AppTopBar} />;

function App() {
  return (
    <Admin dataProvider={dataProvider} authProvider={authProvider} loginPage={LoginPage} dashboard={Dashboard}
      layout={AppLayout} store={memoryStore()} theme={theme} title="Emporium admin" disableTelemetry requireAuth>
      <Resource name="orders" list={orders.OrderList} show={orders.OrderShow} />
      <Resource name="products" list={catalog.ProductList} create={catalog.ProductCreate} edit={catalog.ProductEdit} show={catalog.ProductShow} recordRepresentation="title" />
      <Resource name="categories" list={catalog.CategoryList} create={catalog.CategoryCreate} edit={catalog.CategoryEdit} recordRepresentation="name" />
      <Resource name="users" options={{ label: "Customers" }} list={people.UserList} show={people.UserShow} edit={people.UserEdit} create={people.UserCreate} recordRepresentation="email" />
      <Resource name="promotions" list={settings.PromotionList} create={settings.PromotionCreate} edit={settings.PromotionEdit} />
      <Resource name="gift-cards" options={{ label: "Gift cards" }} list={settings.GiftCardList} create={settings.GiftCardCreate} show={settings.GiftCardShow} />
      <Resource name="shipping-zones" options={{ label: "Shipping zones" }} list={settings.ZoneList} create={settings.ZoneCreate} edit={settings.ZoneEdit} recordRepresentation="name" />
      <Resource name="shipping-methods" options={{ label: "Shipping methods" }} list={settings.MethodList} create={settings.MethodCreate} edit={settings.MethodEdit} />
      <Resource name="tax-rates" options={{ label: "Tax rates" }} list={settings.TaxRateList} create={settings.TaxRateCreate} edit={settings.TaxRateEdit} />
      <Resource name="webhooks" list={settings.WebhookList} create={settings.WebhookCreate} show={settings.WebhookShow} edit={settings.WebhookEdit} />
      <Resource name="jobs" list={settings.JobList} />
      <Resource name="api-keys" options={{ label: "API keys" }} list={people.ApiKeyList} create={people.ApiKeyCreate} />
      <Resource name="audit-events" options={{ label: "Audit trail" }} list={people.AuditList} />
      <CustomRoutes noLayout>
        <Route path="/mfa" element={<MfaEnrolPage />} />
      </CustomRoutes>
      <CustomRoutes>
        <Route path="/import" element={<catalog.ImportPage />} />
        <Route path="/reviews" element={<settings.ReviewsPage />} />
        <Route path="/backups" element={<people.BackupsPage />} />
        <Route path="/sessions" element={<people.SessionsPage />} />
      </CustomRoutes>
    </Admin>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <CacheProvider value={cache}>
      <App />
    </CacheProvider>
  </StrictMode>,
);

export { Card, CardContent };
