// Customers and staff (personal data masked; reveal is audited), own sessions, API keys,
// audit trail, backups.
import { useEffect, useState } from "react";
import {
  ArrayField, BooleanField, CheckboxGroupInput, Create, Datagrid, DateField, DateTimeInput, Edit, List,
  PasswordInput, SelectArrayInput, Show, SimpleForm, SimpleShowLayout, TextField, TextInput, BooleanInput,
  ChipField, SingleFieldList, required, useRecordContext, useNotify, TopToolbar, EditButton,
  CreateButton, DeleteButton,
} from "react-admin";
import { Alert, Box, Button, Typography } from "@mui/material";
import { api } from "./api";
import { ActionForm, Section, SimpleTable, when } from "./common";

const ROLES = ["customer", "staff", "admin"].map((r) => ({ id: r, name: r }));
const Roles = (_: { label?: string }) => {
  const r = useRecordContext();
  return r ? <span>{(r.roles ?? []).join(", ")}</span> : null;
};

export const UserList = () => (
  <List title="Customers and staff" perPage={25}>
    <Datagrid rowClick="show" bulkActionButtons={false}>
      <TextField source="email" label="E-mail (masked)" />
      <TextField source="first_name" label="First name" emptyText="" />
      <TextField source="last_name" label="Last name" emptyText="" />
      <Roles label="Roles" />
      <BooleanField source="is_active" label="Active" />
      <BooleanField source="mfa_enabled" label="MFA" />
      <DateField source="created_at" label="Joined" />
    </Datagrid>
  </List>
);

function Reveal() {
  const user = useRecordContext();
  const [clear, setClear] = useState<any | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (!user) return null;
  const reveal = async () => {
    setError(null);
    try {
      setClear(await api("GET", `/users/${user.id}?reveal=true`));
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <Section title="Personal data">
      <Typography variant="body2" gutterBottom>
        Shown masked. Revealing it is recorded in the audit trail under your name.
      </Typography>
      {clear ? (
        <dl aria-label="Revealed personal data">
          <dt>E-mail</dt><dd>{clear.email}</dd>
          <dt>Name</dt><dd>{[clear.first_name, clear.last_name].filter(Boolean).join(" ") || "-"}</dd>
          <dt>Phone</dt><dd>{clear.phone ?? "-"}</dd>
        </dl>
      ) : (
        <Button variant="outlined" onClick={reveal}>Reveal</Button>
      )}
      {error && <Alert severity="error" role="alert">{error}</Alert>}
    </Section>
  );
}

function Deactivate() {
  const user = useRecordContext();
  if (!user) return null;
  return (
    <ActionForm label={user.is_active ? "Deactivate" : "Reactivate"}
      submit={user.is_active ? "Deactivate (ends every session)" : "Reactivate"}
      action={() => api("PATCH", `/users/${user.id}`, { is_active: !user.is_active })} />
  );
}

/** The user's live sessions (device, start, last use; listing them is audited); end one. */
function UserSessions() {
  const record = useRecordContext();
  const [rows, setRows] = useState<any[] | null>(null);
  const [v, setV] = useState(0);
  useEffect(() => {
    if (record) api("GET", `/users/${record.id}/sessions`).then(setRows, () => setRows([]));
  }, [record?.id, v]);
  if (!record) return null;
  return (
    <Section title="Sessions">
      <Typography variant="body2">Viewing and ending sessions is recorded in the audit trail.</Typography>
      {rows === null ? <Typography>Loading…</Typography> : (
        <SimpleTable caption="Sessions" rows={rows} columns={[
          ["Device", (r) => r.device], ["Signed in", (r) => when(r.created_at)], ["Last used", (r) => when(r.last_used_at)],
          ["", (r) => (
            <ActionForm label="End session" submit="End session"
              action={() => api("DELETE", `/users/${record.id}/sessions/${r.id}`).then(() => setV(v + 1))} />
          )],
        ]} />
      )}
    </Section>
  );
}

export const UserShow = () => (
  <Show actions={<TopToolbar><EditButton label="Roles" /></TopToolbar>}>
    <SimpleShowLayout>
      <TextField source="email" label="E-mail (masked)" />
      <TextField source="phone" label="Phone (masked)" emptyText="-" />
      <Roles label="Roles" />
      <BooleanField source="is_active" label="Active" />
      <BooleanField source="mfa_enabled" label="MFA enabled" />
      <DateField source="created_at" label="Joined" />
      <Reveal />
      <Deactivate />
      <UserSessions />
    </SimpleShowLayout>
  </Show>
);

export const UserEdit = () => (
  <Edit mutationMode="pessimistic" redirect="show">
    <SimpleForm>
      <CheckboxGroupInput source="roles" choices={ROLES} />
      <BooleanInput source="is_active" label="Active" />
    </SimpleForm>
  </Edit>
);

export const UserCreate = () => (
  <Create redirect="show">
    <SimpleForm>
      <TextInput source="email" type="email" validate={required()} />
      <PasswordInput source="password" validate={required()} />
      <TextInput source="first_name" />
      <TextInput source="last_name" />
      <CheckboxGroupInput source="roles" choices={ROLES} defaultValue={["staff"]} validate={required()} />
    </SimpleForm>
  </Create>
);

/** The signed-in user's own sessions. */
export function SessionsPage() {
  const [rows, setRows] = useState<any[]>([]);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    api("GET", "/auth/sessions").then(setRows, () => setRows([]));
  }, [version]);
  return (
    <Box sx={{ p: 2 }}>
      <Typography variant="h5" component="h1">My sessions</Typography>
      <SimpleTable caption="Sessions" rows={rows} columns={[
        ["Device", (s) => s.device ?? ""], ["Started", (s) => when(s.created_at)], ["Last used", (s) => when(s.last_used_at)],
        ["", (s) => s.current ? "this one" : (
          <Button onClick={() => api("DELETE", `/auth/sessions/${s.id}`).then(() => setVersion(version + 1))}>Revoke</Button>
        )],
      ]} />
    </Box>
  );
}

const SCOPES = ["catalog:write", "giftcards:read", "giftcards:write", "inventory:read", "inventory:write", "orders:read",
  "orders:write", "promotions:read", "promotions:write", "shipping:read", "shipping:write"].map((s) => ({ id: s, name: s }));

export const ApiKeyList = () => (
  <List title="API keys" actions={<TopToolbar><CreateButton /></TopToolbar>}>
    <Datagrid bulkActionButtons={false}>
      <TextField source="name" />
      <TextField source="prefix" />
      <ArrayField source="scopes"><SingleFieldList linkType={false}><ChipField source="id" /></SingleFieldList></ArrayField>
      <DateField source="created_at" label="Created" />
      <DateField source="last_used_at" label="Last used" emptyText="never" />
      <DateField source="revoked_at" label="Revoked" emptyText="" />
      <DeleteButton label="Revoke" mutationMode="pessimistic" />
    </Datagrid>
  </List>
);

export function ApiKeyCreate() {
  const [key, setKey] = useState<string | null>(null);
  const notify = useNotify();
  if (key)
    return (
      <Section title="New API key">
        <Alert severity="warning">This key is shown once: copy it now.</Alert>
        <Typography component="code" data-testid="api-key" sx={{ display: "block", my: 2, wordBreak: "break-all" }}>{key}</Typography>
      </Section>
    );
  return (
    <Create mutationOptions={{ onSuccess: (d: any) => { setKey(d.key); notify("API key created"); } }}
      transform={(d: any) => ({ ...d, scopes: (d.scopes ?? []).map((s: any) => s.id ?? s) })}>
      <SimpleForm>
        <TextInput source="name" validate={required()} />
        <SelectArrayInput source="scopes" choices={SCOPES} validate={required()} />
        <DateTimeInput source="expires_at" label="Expires at" />
      </SimpleForm>
    </Create>
  );
}

const auditFilters = [
  <TextInput key="a" source="action" alwaysOn />,
  <TextInput key="t" source="object_type" label="Object type" />,
  <TextInput key="o" source="object_id" label="Object id" />,
  <TextInput key="u" source="actor_id" label="Actor id" />,
  <DateTimeInput key="s" source="since" />,
  <DateTimeInput key="n" source="until" />,
];

function Actor(_: { label?: string }) {
  const r = useRecordContext();
  return r ? <span>{r.actor?.type} {r.actor?.id ?? ""}</span> : null;
}

export const AuditList = () => (
  <List title="Audit trail" filters={auditFilters} perPage={50} actions={false}
    empty={<Typography sx={{ p: 2 }}>No audit events match.</Typography>}>
    <Datagrid bulkActionButtons={false}>
      <DateField source="at" showTime label="When" />
      <TextField source="action" />
      <Actor label="Actor" />
      <TextField source="object_type" label="Object type" />
      <TextField source="object_id" label="Object id" />
      <TextField source="ip" label="IP" emptyText="" />
    </Datagrid>
  </List>
);

export function BackupsPage() {
  const [rows, setRows] = useState<any[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    api("GET", "/backups?limit=20").then((b) => setRows(Array.isArray(b) ? b : b.items), (e) =>
      setError(e.status === 404 ? "This server does not offer backups through the API." : e.message));
  }, [version]);
  return (
    <Box sx={{ p: 2 }}>
      <Typography variant="h5" component="h1">Backups</Typography>
      {error && <Alert severity="info" role="status">{error}</Alert>}
      {rows && (
        <>
          <ActionForm label="Start a backup" submit="Back up now" action={() => api("POST", "/backups").then(() => setVersion(version + 1))} />
          <SimpleTable caption="Backups" rows={rows} columns={[
            ["Started", (b) => when(b.created_at ?? b.started_at)], ["Status", (b) => b.status ?? ""],
            ["Size (bytes)", (b) => b.size ?? b.size_bytes ?? ""], ["SHA-256", (b) => (b.checksum ?? b.sha256 ?? "").slice(0, 16)],
            ["Destinations", (b) => (b.destinations ?? []).map((d: any) => `${d.url ?? d.name}: ${d.status}`).join(", ")],
          ]} />
        </>
      )}
    </Box>
  );
}
