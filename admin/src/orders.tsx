// Orders: list with the API's filters; detail with lines, totals, payments, refunds, parcels,
// returns and history; every staff action of the API.
import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Datagrid, DateField, List, SelectInput, Show, TextField, TextInput, useRecordContext } from "react-admin";
import { Box, Checkbox, FormControlLabel, TextField as MuiText, Typography } from "@mui/material";
import { api, money } from "./api";
import { ActionForm, Money, Section, SimpleTable, when } from "./common";

const choices = (values: string[]) => values.map((v) => ({ id: v, name: v.replace(/_/g, " ") }));
const orderFilters = [
  <SelectInput key="s" source="status" alwaysOn choices={choices(["pending", "paid", "fulfilled", "delivered", "cancelled", "refunded"])} />,
  <SelectInput key="p" source="payment_status" label="Payment" choices={choices(["unpaid", "authorized", "partially_paid", "paid", "partially_refunded", "refunded"])} />,
  <SelectInput key="f" source="fulfillment_status" label="Fulfilment" choices={choices(["unfulfilled", "partially_fulfilled", "fulfilled", "delivered", "partially_returned", "returned"])} />,
  <TextInput key="e" source="email" label="E-mail" />,
  <TextInput key="c" source="customer_id" label="Customer id" />,
];

export const OrderList = () => (
  <List filters={orderFilters} perPage={25}>
    <Datagrid rowClick="show" bulkActionButtons={false}>
      <TextField source="number" />
      <DateField source="created_at" label="Placed" showTime />
      <TextField source="status" />
      <TextField source="payment_status" label="Payment" />
      <TextField source="fulfillment_status" label="Fulfilment" />
      <Money source="total" label="Total" />
    </Datagrid>
  </List>
);

// An order's payments, refunds, parcels and returns: react-query caches them, so the admin's
// refresh (and every action here) fetches them again.
function useSub(path: string, _version?: unknown): any[] {
  const { data } = useQuery({
    queryKey: ["order-sub", path],
    queryFn: async () => {
      const body = await api("GET", path);
      return (Array.isArray(body) ? body : body.items) as any[];
    },
  });
  return data ?? [];
}

const num = (v: string) => Number.parseInt(v, 10);

function Payments({ order }: { order: any }) {
  const payments = useSub(`/orders/${order.id}/payments`, order.updated_at);
  const refunds = useSub(`/orders/${order.id}/refunds`, order.updated_at);
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const c = order.currency;
  return (
    <Section title="Payments and refunds">
      <SimpleTable caption="Payments" rows={payments} columns={[
        ["Provider", (p) => p.provider], ["Status", (p) => p.status], ["Amount", (p) => money(p.amount, c)],
        ["Captured", (p) => money(p.captured_amount, c)], ["Refunded", (p) => money(p.refunded_amount, c)],
        ["", (p) => ["authorized", "pending"].includes(p.status) && (p.status === "authorized" || p.provider === "manual") ? (
          <ActionForm label={`Capture ${p.provider} payment`} submit="Capture" action={() => api("POST", `/payments/${p.id}/capture`, {})} />
        ) : null],
      ]} />
      {order.status === "pending" && (
        <ActionForm label="Record a manual payment" submit="Record manual payment (unpaid balance)" action={async () => {
          const p = await api("POST", `/orders/${order.id}/payments`, { provider: "manual" });
          await api("POST", `/payments/${p.id}/capture`, {});
        }} />
      )}
      <Typography variant="subtitle1" component="h3">Refunds</Typography>
      <SimpleTable caption="Refunds" rows={refunds} columns={[
        ["When", (r) => when(r.created_at)], ["Amount", (r) => money(r.amount, c)], ["Status", (r) => r.status], ["Reason", (r) => r.reason],
      ]} />
      {order.paid_total > order.refunded_total && (
        <ActionForm label="Refund" submit="Refund" action={() => api("POST", `/orders/${order.id}/refunds`, { amount: num(amount), reason })}>
          <MuiText size="small" label={`Amount (minor units, ${c})`} value={amount} onChange={(e) => setAmount(e.target.value)} required slotProps={{ htmlInput: { inputMode: "numeric" } }} />
          <MuiText size="small" label="Reason" value={reason} onChange={(e) => setReason(e.target.value)} required />
        </ActionForm>
      )}
    </Section>
  );
}

function Fulfilment({ order }: { order: any }) {
  const parcels = useSub(`/orders/${order.id}/fulfillments`, order.updated_at);
  const open = order.items.filter((l: any) => l.quantity > l.quantity_fulfilled);
  const [qty, setQty] = useState<Record<string, string>>({});
  const [carrier, setCarrier] = useState("");
  const [tracking, setTracking] = useState("");
  const [notify, setNotify] = useState(true);
  return (
    <Section title="Fulfilment">
      <SimpleTable caption="Parcels" rows={parcels} columns={[
        ["Status", (f) => f.status], ["Carrier", (f) => f.carrier ?? ""], ["Tracking", (f) => f.tracking_number ?? ""],
        ["Shipped", (f) => when(f.shipped_at)], ["Delivered", (f) => when(f.delivered_at)],
        ["", (f) => !f.delivered_at ? <ActionForm label="Mark delivered" submit="Mark delivered" action={() => api("POST", `/fulfillments/${f.id}/delivered`)} /> : null],
      ]} />
      {open.length > 0 && ["paid", "fulfilled"].includes(order.status) && (
        <ActionForm label="Fulfil lines" submit="Fulfil" action={() => api("POST", `/orders/${order.id}/fulfillments`, {
          lines: open.map((l: any) => ({ order_line_id: l.id, quantity: num(qty[l.id] ?? String(l.quantity - l.quantity_fulfilled)) }))
            .filter((l: any) => l.quantity > 0),
          carrier: carrier || null, tracking_number: tracking || null, notify_customer: notify,
        })}>
          {open.map((l: any) => (
            <MuiText key={l.id} size="small" label={`Quantity of ${l.title}`} value={qty[l.id] ?? String(l.quantity - l.quantity_fulfilled)}
              onChange={(e) => setQty({ ...qty, [l.id]: e.target.value })} slotProps={{ htmlInput: { inputMode: "numeric" } }} />
          ))}
          <MuiText size="small" label="Carrier" value={carrier} onChange={(e) => setCarrier(e.target.value)} />
          <MuiText size="small" label="Tracking number" value={tracking} onChange={(e) => setTracking(e.target.value)} />
          <FormControlLabel control={<Checkbox checked={notify} onChange={(e) => setNotify(e.target.checked)} />} label="E-mail the customer" />
        </ActionForm>
      )}
    </Section>
  );
}

function Returns({ order }: { order: any }) {
  const returns = useSub(`/orders/${order.id}/returns`, order.updated_at);
  const [restock, setRestock] = useState(true);
  return (
    <Section title="Returns">
      <SimpleTable caption="Returns" rows={returns} columns={[
        ["Requested", (r) => when(r.created_at)], ["Status", (r) => r.status],
        ["Lines", (r) => r.lines.map((l: any) => `${l.quantity} × ${order.items.find((i: any) => i.id === l.order_line_id)?.title ?? l.order_line_id}`).join(", ")],
        ["Refunded", (r) => money(r.amount_refunded, order.currency)],
        ["", (r) => r.status === "requested" ? (
          <ActionForm label="Receive return" submit="Receive" action={() => api("POST", `/returns/${r.id}/receive`, {
            lines: r.lines.map((l: any) => ({ order_line_id: l.order_line_id, quantity: l.quantity, restock })),
          })}>
            <FormControlLabel control={<Checkbox checked={restock} onChange={(e) => setRestock(e.target.checked)} />} label="Restock" />
          </ActionForm>
        ) : r.status === "received" ? (
          <ActionForm label="Refund return" submit="Refund return" action={() => api("POST", `/returns/${r.id}/refund`, {})} />
        ) : null],
      ]} />
    </Section>
  );
}

function OrderDetail() {
  const order = useRecordContext();
  if (!order) return null;
  const c = order.currency;
  return (
    <Box sx={{ p: 2 }}>
      <Typography variant="h5" component="h1">Order {order.number}</Typography>
      <Typography>
        {order.email} · status <strong>{order.status}</strong> · payment {order.payment_status} · fulfilment {order.fulfillment_status}
      </Typography>
      <Section title="Lines">
        <SimpleTable caption="Order lines" rows={order.items} columns={[
          ["Item", (l) => l.title], ["SKU", (l) => l.sku ?? ""], ["Quantity", (l) => l.quantity],
          ["Unit price", (l) => money(l.unit_price, c)], ["Discount", (l) => money(l.discount_total, c)],
          ["Tax", (l) => money(l.tax_total, c)], ["Total", (l) => money(l.total, c)],
          ["Fulfilled", (l) => l.quantity_fulfilled], ["Returned", (l) => l.quantity_returned],
        ]} />
        <Typography sx={{ mt: 1 }}>
          Subtotal {money(order.subtotal, c)} · discounts {money(order.discount_total, c)} · shipping {money(order.shipping_total, c)} ·
          tax {money(order.tax_total, c)} · <strong>total {money(order.total, c)}</strong> · paid {money(order.paid_total, c)} ·
          refunded {money(order.refunded_total, c)}
        </Typography>
      </Section>
      <Payments order={order} />
      <Fulfilment order={order} />
      <Returns order={order} />
      <Section title="Actions">
        {["pending", "paid"].includes(order.status) && order.fulfillment_status === "unfulfilled" && (
          <ActionForm label="Cancel order" submit="Cancel order" action={() => api("POST", `/orders/${order.id}/cancel`)} />
        )}
        {order.status === "fulfilled" && (
          <ActionForm label="Mark order delivered" submit="Mark order delivered" action={() => api("POST", `/orders/${order.id}/transitions`, { to: "delivered" })} />
        )}
      </Section>
      <Section title="History">
        <SimpleTable caption="Status history" rows={order.status_history ?? []} columns={[
          ["When", (h) => when(h.at ?? h.created_at)], ["From", (h) => h.from_status ?? h.from ?? ""], ["To", (h) => h.to_status ?? h.to ?? ""],
        ]} />
      </Section>
    </Box>
  );
}

export const OrderShow = () => (
  <Show title="Order" actions={false}>
    <OrderDetail />
  </Show>
);
