// Small pieces every screen uses.
import { useState, type FormEvent, type ReactNode } from "react";
import { useNotify, useRecordContext, useRefresh } from "react-admin";
import { Alert, Box, Button, Paper, Table, TableBody, TableCell, TableHead, TableRow, Typography } from "@mui/material";
import { money } from "./api";

export function Money({ source, currencySource = "currency" }: { source: string; currencySource?: string; label?: string }) {
  const record = useRecordContext();
  if (!record) return null;
  return <span>{money(record[source], record[currencySource] ?? "USD")}</span>;
}

export function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <Paper component="section" aria-label={title} sx={{ p: 2, my: 2 }} variant="outlined">
      <Typography variant="h6" component="h2" gutterBottom>
        {title}
      </Typography>
      {children}
    </Paper>
  );
}

export function SimpleTable({ caption, columns, rows }: {
  caption: string;
  columns: [string, (row: any) => ReactNode][];
  rows: any[];
}) {
  if (!rows.length) return <Typography variant="body2">None.</Typography>;
  return (
    <Table size="small" aria-label={caption}>
      <TableHead>
        <TableRow>{columns.map(([h]) => <TableCell key={h} component="th" scope="col">{h}</TableCell>)}</TableRow>
      </TableHead>
      <TableBody>
        {rows.map((r, i) => (
          <TableRow key={r.id ?? i}>{columns.map(([h, f]) => <TableCell key={h}>{f(r)}</TableCell>)}</TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

/** A form whose submit runs `action`; the problem's detail is shown when it fails. */
export function ActionForm({ label, submit, action, children }: {
  label: string;
  submit: string;
  action: () => Promise<unknown>;
  children?: ReactNode;
}) {
  const notify = useNotify();
  const refresh = useRefresh();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await action();
      notify(`${label}: done`, { type: "success" });
      refresh();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Box component="form" onSubmit={onSubmit} aria-label={label} sx={{ display: "flex", flexWrap: "wrap", gap: 1, alignItems: "center", my: 1 }}>
      {children}
      <Button type="submit" variant="outlined" disabled={busy}>{submit}</Button>
      {error && <Alert severity="error" role="alert" sx={{ width: "100%" }}>{error}</Alert>}
    </Box>
  );
}

export const when = (value: string | null | undefined) => (value ? new Date(value).toLocaleString() : "");
