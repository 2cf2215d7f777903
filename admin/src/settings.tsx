// Promotions, gift cards, shipping, tax rates, webhooks, jobs, reviews moderation.
import { useEffect, useState } from "react";
import {
  BooleanField, BooleanInput, Create, Datagrid, DateField, DateTimeInput, Edit, List, NumberField, NumberInput,
  ReferenceInput, SelectInput, Show, SimpleForm, SimpleShowLayout, TextField, TextInput, required,
  useRecordContext, useNotify, DeleteButton, TopToolbar, CreateButton, EditButton, TextArrayInput,
  CheckboxGroupInput,
} from "react-admin";
import { Alert, Box, Button, Link, Typography, TextField as MuiText } from "@mui/material";
import { api } from "./api";
import { ActionForm, Money, Section, SimpleTable, when } from "./common";

const editActions = <TopToolbar><DeleteButton mutationMode="pessimistic" /></TopToolbar>;

export const PromotionList = () => (
  <List>
    <Datagrid rowClick="edit" bulkActionButtons={false}>
      <TextField source="name" />
      <TextField source="code" emptyText="(automatic)" />
      <TextField source="type" />
      <NumberField source="value" />
      <NumberField source="times_used" label="Used" />
      <BooleanField source="active" />
    </Datagrid>
  </List>
);
const promotionForm = (
  <SimpleForm>
    <TextInput source="name" validate={required()} />
    <TextInput source="code" helperText="Empty: applies by itself when its conditions hold" />
    <SelectInput source="type" validate={required()} choices={[
      { id: "percentage", name: "percentage (basis points)" }, { id: "fixed_amount", name: "fixed amount (minor units)" },
      { id: "free_shipping", name: "free shipping" }]} />
    <NumberInput source="value" helperText="Basis points for a percentage (1000 = 10 %), minor units for a fixed amount" />
    <NumberInput source="min_subtotal" label="Minimum subtotal (minor units)" />
    <DateTimeInput source="starts_at" />
    <DateTimeInput source="ends_at" />
    <NumberInput source="usage_limit" />
    <NumberInput source="usage_limit_per_customer" />
    <BooleanInput source="combinable" />
    <BooleanInput source="active" defaultValue={true} />
  </SimpleForm>
);
export const PromotionCreate = () => <Create redirect="list">{promotionForm}</Create>;
export const PromotionEdit = () => <Edit mutationMode="pessimistic" redirect="list" actions={editActions}>{promotionForm}</Edit>;

export const GiftCardList = () => (
  <List>
    <Datagrid rowClick="show" bulkActionButtons={false}>
      <TextField source="last4" label="Ends with" />
      <Money source="balance" label="Balance" />
      <Money source="initial_balance" label="Initial" />
      <TextField source="status" />
      <DateField source="expires_at" emptyText="never" />
    </Datagrid>
  </List>
);
export function GiftCardCreate() {
  const [code, setCode] = useState<string | null>(null);
  const notify = useNotify();
  if (code)
    return (
      <Section title="New gift card">
        <Alert severity="warning">The code is shown once: give it to the customer now.</Alert>
        <Typography component="code" sx={{ display: "block", my: 2 }}>{code}</Typography>
      </Section>
    );
  return (
    <Create mutationOptions={{ onSuccess: (d: any) => { setCode(d.code); notify("Gift card created"); } }}>
      <SimpleForm>
        <NumberInput source="initial_balance" label="Balance (minor units)" validate={required()} />
        <TextInput source="currency" defaultValue="USD" validate={required()} />
        <DateTimeInput source="expires_at" />
        <TextInput source="note" />
      </SimpleForm>
    </Create>
  );
}
function DisableCard() {
  const r = useRecordContext();
  return r && r.status === "active" ? <ActionForm label="Disable gift card" submit="Disable" action={() => api("POST", `/gift-cards/${r.id}/disable`)} /> : null;
}
export const GiftCardShow = () => (
  <Show>
    <SimpleShowLayout>
      <TextField source="last4" label="Ends with" />
      <Money source="balance" label="Balance" />
      <TextField source="status" />
      <TextField source="note" emptyText="" />
      <DisableCard />
    </SimpleShowLayout>
  </Show>
);

export const ZoneList = () => (
  <List title="Shipping zones">
    <Datagrid rowClick="edit" bulkActionButtons={false}>
      <TextField source="name" />
      <TextField source="countries" />
      <TextField source="regions" />
    </Datagrid>
  </List>
);
const zoneForm = (
  <SimpleForm>
    <TextInput source="name" validate={required()} />
    <TextArrayInput source="countries" helperText="ISO 3166-1 alpha-2 codes, e.g. DE" />
    <TextArrayInput source="regions" helperText="ISO 3166-2 codes, e.g. US-CA" />
  </SimpleForm>
);
export const ZoneCreate = () => <Create redirect="list">{zoneForm}</Create>;
export const ZoneEdit = () => <Edit mutationMode="pessimistic" redirect="list" actions={editActions}>{zoneForm}</Edit>;

export const MethodList = () => (
  <List title="Shipping methods">
    <Datagrid rowClick="edit" bulkActionButtons={false}>
      <TextField source="name" />
      <TextField source="carrier" emptyText="" />
      <Money source="price" label="Price" />
      <BooleanField source="active" />
    </Datagrid>
  </List>
);
const methodForm = (create: boolean) => (
  <SimpleForm>
    {create && <ReferenceInput source="zone_id" reference="shipping-zones"><SelectInput optionText="name" label="Zone" validate={required()} /></ReferenceInput>}
    <TextInput source="name" validate={required()} />
    <TextInput source="carrier" />
    <NumberInput source="price" label="Price (minor units)" validate={required()} />
    <NumberInput source="free_over" label="Free over (minor units)" />
    <NumberInput source="min_weight_grams" label="Minimum weight (g)" />
    <NumberInput source="max_weight_grams" label="Maximum weight (g)" />
    <TextInput source="tax_class" label="Tax class" />
    <BooleanInput source="active" defaultValue={true} />
  </SimpleForm>
);
export const MethodCreate = () => <Create redirect="list">{methodForm(true)}</Create>;
export const MethodEdit = () => <Edit mutationMode="pessimistic" redirect="list" actions={editActions}>{methodForm(false)}</Edit>;

export const TaxRateList = () => (
  <List title="Tax rates">
    <Datagrid rowClick="edit" bulkActionButtons={false}>
      <TextField source="name" />
      <TextField source="country" />
      <TextField source="region" emptyText="" />
      <TextField source="tax_class" label="Tax class" />
      <NumberField source="rate_bp" label="Rate (basis points)" />
    </Datagrid>
  </List>
);
const taxForm = (
  <SimpleForm>
    <TextInput source="name" validate={required()} />
    <TextInput source="country" validate={required()} helperText="ISO 3166-1 alpha-2" />
    <TextInput source="region" helperText="ISO 3166-2, optional" />
    <TextInput source="tax_class" defaultValue="standard" label="Tax class" />
    <NumberInput source="rate_bp" label="Rate (basis points; 2000 = 20 %)" validate={required()} />
  </SimpleForm>
);
export const TaxRateCreate = () => <Create redirect="list">{taxForm}</Create>;
export const TaxRateEdit = () => <Edit mutationMode="pessimistic" redirect="list" actions={editActions}>{taxForm}</Edit>;

export const WebhookList = () => (
  <List>
    <Datagrid rowClick="show" bulkActionButtons={false}>
      <TextField source="url" label="URL" />
      <TextField source="description" emptyText="" />
      <BooleanField source="is_active" label="Active" />
    </Datagrid>
  </List>
);
function EventChoices() {
  const [events, setEvents] = useState<string[]>([]);
  useEffect(() => {
    api("GET", "/webhooks/events").then((b) => setEvents(Array.isArray(b) ? b.map((e: any) => e.name ?? e) : b.items ?? b.events ?? []), () => setEvents([]));
  }, []);
  return <CheckboxGroupInput source="events" choices={events.map((e) => ({ id: e, name: e }))} validate={required()} />;
}
export function WebhookCreate() {
  const [secret, setSecret] = useState<string | null>(null);
  if (secret)
    return (
      <Section title="New webhook">
        <Alert severity="warning">The signing secret is shown once: copy it now.</Alert>
        <Typography component="code" sx={{ display: "block", my: 2 }}>{secret}</Typography>
      </Section>
    );
  return (
    <Create mutationOptions={{ onSuccess: (d: any) => setSecret(d.secret) }}>
      <SimpleForm>
        <TextInput source="url" label="URL" type="url" validate={required()} />
        <TextInput source="description" />
        <EventChoices />
      </SimpleForm>
    </Create>
  );
}
function Deliveries() {
  const hook = useRecordContext();
  const [rows, setRows] = useState<any[]>([]);
  const [v, setV] = useState(0);
  useEffect(() => {
    if (hook) api("GET", `/webhooks/${hook.id}/deliveries?limit=50`).then((b) => setRows(b.items), () => setRows([]));
  }, [hook, v]);
  if (!hook) return null;
  return (
    <Section title="Deliveries">
      <SimpleTable caption="Deliveries" rows={rows} columns={[
        ["Event", (d) => d.event_type], ["Status", (d) => d.status], ["Attempts", (d) => d.attempts],
        ["Next retry", (d) => when(d.next_retry_at)], ["Delivered", (d) => when(d.delivered_at)],
        ["", (d) => d.status !== "delivered" ? (
          <ActionForm label="Retry delivery" submit="Retry" action={() => api("POST", `/webhooks/${hook.id}/deliveries/${d.id}/retry`).then(() => setV(v + 1))} />
        ) : null],
      ]} />
    </Section>
  );
}
export const WebhookShow = () => (
  <Show actions={<TopToolbar><EditButton /><DeleteButton mutationMode="pessimistic" /></TopToolbar>}>
    <SimpleShowLayout>
      <TextField source="url" label="URL" />
      <TextField source="events" />
      <BooleanField source="is_active" label="Active" />
      <Deliveries />
    </SimpleShowLayout>
  </Show>
);
export const WebhookEdit = () => (
  <Edit mutationMode="pessimistic" redirect="show">
    <SimpleForm>
      <TextInput source="url" label="URL" />
      <TextInput source="description" />
      <BooleanInput source="is_active" label="Active" />
    </SimpleForm>
  </Edit>
);

const jobFilters = [
  <SelectInput key="s" source="status" alwaysOn choices={["queued", "running", "done", "failed", "dead"].map((s) => ({ id: s, name: s }))} />,
];
function RetryJob(_: { label?: string }) {
  const r = useRecordContext();
  return r && r.status === "dead" ? <ActionForm label="Retry job" submit="Retry" action={() => api("POST", `/jobs/${r.id}/retry`)} /> : null;
}
export const JobList = () => (
  <List filters={jobFilters} filterDefaultValues={{ status: "dead" }} actions={false} title="Jobs">
    <Datagrid bulkActionButtons={false}>
      <TextField source="kind" />
      <TextField source="status" />
      <NumberField source="attempts" />
      <TextField source="last_error" label="Last error" emptyText="" />
      <DateField source="updated_at" showTime label="Updated" />
      <RetryJob label="" />
    </Datagrid>
  </List>
);

/** Reviews of one product, with moderation (publish or hide). */
/** Reviews of every product, newest first, filtered by status; publish or hide each. */
export function ReviewsPage() {
  const [status, setStatus] = useState("published");
  const [rows, setRows] = useState<any[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [v, setV] = useState(0);
  const load = (cursor: string | null) =>
    api("GET", `/reviews?limit=50${status ? `&status=${status}` : ""}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`).then(
      (b) => { setRows((old) => (cursor ? [...old, ...b.items] : b.items)); setNext(b.next_cursor); },
      () => { setRows([]); setNext(null); },
    );
  useEffect(() => { load(null); }, [status, v]);
  return (
    <Box sx={{ p: 2 }}>
      <Typography variant="h5" component="h1">Reviews</Typography>
      <MuiText select slotProps={{ select: { native: true } }} label="Status" value={status} onChange={(e) => setStatus(e.target.value)} sx={{ my: 2, minWidth: 200 }}>
        <option value="published">Published</option>
        <option value="hidden">Hidden</option>
        <option value="">All</option>
      </MuiText>
      <SimpleTable caption="Reviews" rows={rows} columns={[
        ["Product", (r) => <Link href={`#/products/${r.product_id}/show`}>{r.product_id.slice(0, 8)}</Link>],
        ["Rating", (r) => r.rating], ["Title", (r) => r.title ?? ""], ["Review", (r) => r.body], ["Author", (r) => r.author_name ?? ""],
        ["Verified", (r) => (r.verified_purchase ? "yes" : "no")], ["Status", (r) => r.status],
        ["", (r) => (
          <ActionForm label="Moderate review" submit={r.status === "hidden" ? "Approve" : "Reject"}
            action={() => api("PATCH", `/reviews/${r.id}`, { status: r.status === "hidden" ? "published" : "hidden" }).then(() => setV(v + 1))} />
        )],
      ]} />
      {next && <Button onClick={() => load(next)} sx={{ mt: 1 }}>More reviews</Button>}
    </Box>
  );
}

export { CreateButton };
