// Catalog: categories (tree), products with variants, stock adjustments and the ledger.
import { useEffect, useState, type FormEvent } from "react";
import {
  ArrayInput, BooleanField, BooleanInput, Create, Datagrid, DateField, Edit, List, NumberInput,
  ReferenceField, ReferenceInput, SelectInput, Show, SimpleForm, SimpleFormIterator, SimpleShowLayout,
  TextField, TextInput, required, useGetList, useRecordContext, EditButton, DeleteButton,
  TopToolbar, ShowButton,
} from "react-admin";
import { Alert, Box, Button, Checkbox, FormControlLabel, TextField as MuiText, Typography, Link } from "@mui/material";
import { api, money } from "./api";
import { ActionForm, Section, SimpleTable, when } from "./common";

type Category = { id: string; name: string; parent_id: string | null; slug: string };

function depthOf(c: Category, byId: Map<string, Category>): number {
  let depth = 0;
  for (let p = c.parent_id; p && depth < 20; p = byId.get(p)?.parent_id ?? null) depth++;
  return depth;
}

/** Categories in tree order, each indented by its depth. */
export function CategoryList() {
  const { data = [], isPending } = useGetList<Category>("categories", { pagination: { page: 1, perPage: 100 } });
  if (isPending) return null;
  const byId = new Map(data.map((c) => [c.id, c]));
  const children = (parent: string | null) => data.filter((c) => (c.parent_id ?? null) === parent).sort((a, b) => a.name.localeCompare(b.name));
  const ordered: Category[] = [];
  const walk = (parent: string | null) => children(parent).forEach((c) => { ordered.push(c); walk(c.id); });
  walk(null);
  return (
    <List resource="categories" pagination={false} title="Categories">
      <Datagrid data={ordered} total={ordered.length} rowClick="edit" bulkActionButtons={false}>
        <NameWithDepth byId={byId} label="Name" />
        <TextField source="slug" />
        <EditButton />
      </Datagrid>
    </List>
  );
}

function NameWithDepth({ byId }: { byId: Map<string, Category>; label?: string }) {
  const record = useRecordContext<Category>();
  if (!record) return null;
  return <span>{"— ".repeat(depthOf(record, byId))}{record.name}</span>;
}

const categoryForm = (
  <SimpleForm>
    <TextInput source="name" validate={required()} />
    <TextInput source="slug" helperText="Left empty, made from the name" />
    <ReferenceInput source="parent_id" reference="categories">
      <SelectInput optionText="name" label="Parent category" emptyText="(top level)" />
    </ReferenceInput>
    <TextInput source="description" multiline />
  </SimpleForm>
);
export const CategoryCreate = () => <Create redirect="list">{categoryForm}</Create>;
export const CategoryEdit = () => (
  <Edit mutationMode="pessimistic" redirect="list" actions={<TopToolbar><DeleteButton mutationMode="pessimistic" /></TopToolbar>}>
    {categoryForm}
  </Edit>
);

const productFilters = [
  <TextInput key="q" source="q" label="Search" alwaysOn />,
  <ReferenceInput key="c" source="category" reference="categories"><SelectInput optionText="name" label="Category" /></ReferenceInput>,
  <TextInput key="b" source="brand" />,
  <TextInput key="t" source="tag" />,
  <BooleanInput key="s" source="in_stock" label="In stock" />,
];

function PriceFrom(_: { label?: string }) {
  const r = useRecordContext();
  return r ? <span>{money(r.price_min, r.currency)}</span> : null;
}

export const ProductList = () => (
  <List filters={productFilters} sort={{ field: "created_at", order: "DESC" }} perPage={25}>
    <Datagrid rowClick="show" bulkActionButtons={false}>
      <TextField source="title" />
      <ReferenceField source="category_id" reference="categories" label="Category" link={false}><TextField source="name" /></ReferenceField>
      <PriceFrom label="From" />
      <BooleanField source="published" />
      <DateField source="created_at" label="Created" />
    </Datagrid>
  </List>
);

const productFields = [
  <TextInput key="t" source="title" validate={required()} />,
  <TextInput key="s" source="slug" helperText="Left empty, made from the title" />,
  <ReferenceInput key="c" source="category_id" reference="categories">
    <SelectInput optionText="name" label="Category" validate={required()} />
  </ReferenceInput>,
  <TextInput key="d" source="description" multiline fullWidth />,
  <TextInput key="b" source="brand" />,
  <TextInput key="tc" source="tax_class" defaultValue="standard" label="Tax class" />,
  <BooleanInput key="p" source="published" label="Published" />,
  <ArrayInput key="i" source="images" label="Images (by URL)">
    <SimpleFormIterator inline>
      <TextInput source="url" label="Image URL" validate={required()} />
      <TextInput source="alt" label="Alt text" />
    </SimpleFormIterator>
  </ArrayInput>,
];

export const ProductCreate = () => (
  <Create redirect="show" transform={(d: any) => ({ ...d, tags: d.tags ?? [] })}>
    <SimpleForm>
      {productFields}
      <ArrayInput source="variants" label="Variants" validate={required()}>
        <SimpleFormIterator>
          <TextInput source="title" label="Variant title" validate={required()} />
          <TextInput source="sku" label="SKU" />
          <NumberInput source="price" label="Price (minor units, e.g. cents)" validate={required()} />
          <NumberInput source="stock" label="Opening stock" />
          <NumberInput source="weight_grams" label="Weight (grams)" />
        </SimpleFormIterator>
      </ArrayInput>
    </SimpleForm>
  </Create>
);

export const ProductEdit = () => (
  <Edit mutationMode="pessimistic" redirect="show">
    <SimpleForm>{productFields}</SimpleForm>
  </Edit>
);

function Ledger({ variantId }: { variantId: string }) {
  const [rows, setRows] = useState<any[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api("GET", `/variants/${variantId}/stock-movements?limit=20`).then((b) => setRows(b.items), (e) => setError(e.message));
  }, [variantId]);
  if (error) return <Typography color="error">{error}</Typography>;
  return (
    <SimpleTable caption="Stock ledger" rows={rows} columns={[
      ["When", (r) => when(r.created_at)], ["Kind", (r) => r.kind], ["Change", (r) => r.delta],
      ["Stock after", (r) => r.stock_after], ["Reason", (r) => r.reason ?? ""],
    ]} />
  );
}

function Variants() {
  const product = useRecordContext();
  const [open, setOpen] = useState<string | null>(null);
  const [delta, setDelta] = useState("");
  const [reason, setReason] = useState("");
  if (!product) return null;
  return (
    <Section title="Variants and stock">
      <SimpleTable caption="Variants" rows={product.variants} columns={[
        ["Variant", (v) => v.title], ["SKU", (v) => v.sku ?? ""], ["Price", (v) => money(v.price, v.currency)],
        ["Stock", (v) => v.stock ?? "untracked"], ["Weight (g)", (v) => v.weight_grams ?? ""],
        ["", (v) => <Link component="button" onClick={() => setOpen(open === v.id ? null : v.id)}>Stock…</Link>],
      ]} />
      {open && (
        <>
          <Typography variant="subtitle1" component="h3" sx={{ mt: 2 }}>
            Adjust stock of {product.variants.find((v: any) => v.id === open)?.title}
          </Typography>
          <ActionForm label="Adjust stock" submit="Adjust" action={() =>
            api("POST", `/variants/${open}/stock-adjustments`, { delta: Number.parseInt(delta, 10), reason })}>
            <MuiText label="Change (+/- units)" value={delta} onChange={(e) => setDelta(e.target.value)} size="small" required slotProps={{ htmlInput: { inputMode: "numeric" } }} />
            <MuiText label="Reason" value={reason} onChange={(e) => setReason(e.target.value)} size="small" required />
          </ActionForm>
          <Ledger key={`${open}-${product.variants.find((v: any) => v.id === open)?.stock}`} variantId={open} />
        </>
      )}
    </Section>
  );
}

function PublishToggle() {
  const p = useRecordContext();
  if (!p) return null;
  return (
    <ActionForm label={p.published ? "Unpublish" : "Publish"} submit={p.published ? "Unpublish (archive)" : "Publish"}
      action={() => api("PATCH", `/products/${p.id}`, { published: !p.published })} />
  );
}

export const ProductShow = () => (
  <Show actions={<TopToolbar><EditButton /><DeleteButton mutationMode="pessimistic" /></TopToolbar>}>
    <SimpleShowLayout>
      <TextField source="title" />
      <TextField source="slug" />
      <ReferenceField source="category_id" reference="categories" link={false}><TextField source="name" /></ReferenceField>
      <TextField source="brand" emptyText="-" />
      <TextField source="tax_class" label="Tax class" />
      <BooleanField source="published" />
      <TextField source="description" />
      <PublishToggle />
      <Variants />
    </SimpleShowLayout>
  </Show>
);

export { ShowButton };

type ImportReport = {
  counts: Record<string, Record<string, number>>;
  problems: { where: string; message: string; subject: string }[];
  summary: string;
  changed: boolean;
};

/** Shopify CSV import: pick an export file, send it, show the importer's report. */
export function ImportPage() {
  const [file, setFile] = useState<File | null>(null);
  const [skip, setSkip] = useState(false);
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState<ImportReport | null>(null);
  const [error, setError] = useState<{ message: string; errors: any[] } | null>(null);
  const send = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setReport(null);
    setError(null);
    try {
      setReport(await api<ImportReport>("POST", "/imports/shopify-csv", { csv: await file.text(), skip_invalid: skip }));
    } catch (err: any) {
      setError({ message: err.message, errors: err.body?.errors ?? [] });
    } finally {
      setBusy(false);
    }
  };
  const counts = report ? Object.entries(report.counts).map(([kind, c]) => ({ id: kind, kind, ...c })) : [];
  return (
    <Box sx={{ p: 2 }}>
      <Typography variant="h5" component="h1">Import a Shopify CSV export</Typography>
      <Box component="form" aria-label="Import a Shopify CSV export" onSubmit={send} sx={{ display: "flex", flexWrap: "wrap", gap: 2, alignItems: "center", my: 2 }}>
        <label htmlFor="shopify-csv">CSV file (products export, UTF-8, up to 1,000,000 characters) </label>
        <input id="shopify-csv" type="file" accept=".csv,text/csv" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        <FormControlLabel control={<Checkbox checked={skip} onChange={(e) => setSkip(e.target.checked)} />} label="Import the valid products, report the rest" />
        <Button type="submit" variant="contained" disabled={!file || busy}>Import</Button>
      </Box>
      {error && (
        <Alert severity="error" role="alert">
          {error.message} Nothing was imported.
          <SimpleTable caption="Problems" rows={error.errors} columns={[["Where", (p) => Array.isArray(p.loc) ? p.loc.join(".") : p.loc], ["Problem", (p) => p.msg]]} />
        </Alert>
      )}
      {report && (
        <Section title="Report">
          <Typography component="pre" sx={{ whiteSpace: "pre-wrap" }}>{report.summary}</Typography>
          <SimpleTable caption="Counts" rows={counts} columns={[
            ["Kind", (r) => r.kind], ["Created", (r) => r.created ?? 0], ["Updated", (r) => r.updated ?? 0],
            ["Unchanged", (r) => r.unchanged ?? 0], ["Skipped", (r) => r.skipped ?? 0],
          ]} />
          {report.problems.length > 0 && (
            <SimpleTable caption="Skipped" rows={report.problems} columns={[["Where", (p) => p.where], ["Product", (p) => p.subject], ["Problem", (p) => p.message]]} />
          )}
        </Section>
      )}
    </Box>
  );
}
