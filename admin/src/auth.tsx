// Sign-in (password, then TOTP or a recovery code), TOTP enrolment, sign-out.
import { useState, type FormEvent } from "react";
import type { AuthProvider } from "react-admin";
import { useLogin, useNotify } from "react-admin";
import { useNavigate } from "react-router-dom";
import { Alert, Box, Button, Card, CardContent, TextField, Typography } from "@mui/material";
import { api, clearTokens, setTokens, signedIn } from "./api";

export type Me = {
  id: string;
  email: string;
  roles: string[];
  mfa_enabled: boolean;
  first_name?: string | null;
  last_name?: string | null;
};
let me: Me | null = null;

async function loadMe(): Promise<Me> {
  me = await api<Me>("GET", "/users/me");
  return me;
}

export const authProvider: AuthProvider = {
  // The page below has already exchanged the credentials for tokens; this only checks the role.
  login: async () => {
    const who = await loadMe();
    if (!who.roles.includes("staff") && !who.roles.includes("admin")) {
      await authProvider.logout({});
      throw new Error("This account is not a staff or admin account.");
    }
  },
  logout: async () => {
    if (signedIn()) {
      try {
        await api("POST", "/auth/logout");
      } catch {
        /* the session may already be gone */
      }
    }
    clearTokens();
    me = null;
  },
  checkAuth: async () => {
    if (!signedIn()) throw new Error("Please sign in.");
  },
  checkError: async (error: { status?: number; body?: { code?: string } }) => {
    if (error?.status === 401) {
      clearTokens();
      throw new Error("Your session has ended; please sign in again.");
    }
  },
  getIdentity: async () => {
    const who = me ?? (await loadMe());
    const name = [who.first_name, who.last_name].filter(Boolean).join(" ");
    return { id: who.id, fullName: name || who.email };
  },
  getPermissions: async () => (me ?? (await loadMe())).roles,
};

export function currentUser(): Me | null {
  return me;
}

function Frame({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <Box component="main" sx={{ display: "flex", justifyContent: "center", mt: 8, px: 2 }}>
      <Card sx={{ width: 420, maxWidth: "100%" }}>
        <CardContent>
          <Typography variant="h5" component="h1" gutterBottom>
            {title}
          </Typography>
          {children}
        </CardContent>
      </Card>
    </Box>
  );
}

export function LoginPage() {
  const login = useLogin();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [mfaToken, setMfaToken] = useState<string | null>(null);
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function run(step: () => Promise<void>) {
    setBusy(true);
    setError(null);
    try {
      await step();
    } catch (e) {
      setError(e instanceof Error ? e.message : "Sign-in failed.");
    } finally {
      setBusy(false);
    }
  }

  async function finish(body: any) {
    setTokens(body);
    const who = await loadMe();
    await login({}, who.mfa_enabled ? "/" : "/mfa");
  }

  const submitPassword = (e: FormEvent) => {
    e.preventDefault();
    run(async () => {
      const body = await api("POST", "/auth/login", { email, password });
      if (body.mfa_required) setMfaToken(body.mfa_token);
      else await finish(body);
    });
  };
  const submitCode = (e: FormEvent) => {
    e.preventDefault();
    run(async () => finish(await api("POST", "/auth/login/mfa", { mfa_token: mfaToken, code: code.trim() })));
  };

  return (
    <Frame title="Emporium admin: sign in">
      {error && (
        <Alert severity="error" role="alert" sx={{ mb: 2 }}>
          {error}
        </Alert>
      )}
      {mfaToken === null ? (
        <form onSubmit={submitPassword} aria-label="Sign in">
          <TextField label="E-mail" type="email" autoComplete="username" value={email}
            onChange={(e) => setEmail(e.target.value)} fullWidth margin="normal" required autoFocus />
          <TextField label="Password" type="password" autoComplete="current-password" value={password}
            onChange={(e) => setPassword(e.target.value)} fullWidth margin="normal" required />
          <Button type="submit" variant="contained" disabled={busy} fullWidth sx={{ mt: 2 }}>
            Sign in
          </Button>
        </form>
      ) : (
        <form onSubmit={submitCode} aria-label="Second factor">
          <Typography>Enter the 6-digit code from your authenticator app, or a recovery code.</Typography>
          <TextField label="Authentication code" autoComplete="one-time-code" value={code}
            onChange={(e) => setCode(e.target.value)} fullWidth margin="normal" required autoFocus />
          <Button type="submit" variant="contained" disabled={busy} fullWidth sx={{ mt: 2 }}>
            Verify
          </Button>
        </form>
      )}
    </Frame>
  );
}

/** TOTP enrolment for a staff or admin account without MFA; recovery codes are shown once. */
export function MfaEnrolPage() {
  const navigate = useNavigate();
  const notify = useNotify();
  const [secret, setSecret] = useState<{ secret: string; otpauth_uri: string } | null>(null);
  const [code, setCode] = useState("");
  const [codes, setCodes] = useState<string[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const start = async () => {
    setError(null);
    try {
      setSecret(await api("POST", "/auth/mfa/totp"));
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const confirm = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const body = await api("POST", "/auth/mfa/totp/confirm", { code: code.trim() });
      setCodes(body.recovery_codes);
      if (me) me.mfa_enabled = true;
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <Frame title="Set up two-factor sign-in">
      {error && <Alert severity="error" role="alert" sx={{ mb: 2 }}>{error}</Alert>}
      {codes ? (
        <>
          <Alert severity="warning" sx={{ mb: 2 }}>
            These recovery codes are shown once. Keep them somewhere safe: each signs you in once
            if you lose your authenticator.
          </Alert>
          <Box component="ul" aria-label="Recovery codes" sx={{ fontFamily: "monospace" }}>
            {codes.map((c) => <li key={c}>{c}</li>)}
          </Box>
          <Button variant="contained" onClick={() => { notify("Two-factor sign-in is on."); navigate("/"); }}>
            I have saved them
          </Button>
        </>
      ) : secret ? (
        <form onSubmit={confirm} aria-label="Confirm enrolment">
          <Typography gutterBottom>Add this key to your authenticator app, then enter the code it shows.</Typography>
          <Typography component="code" data-testid="totp-secret" sx={{ display: "block", wordBreak: "break-all", mb: 1 }}>
            {secret.secret}
          </Typography>
          <Typography variant="body2" sx={{ wordBreak: "break-all" }}>{secret.otpauth_uri}</Typography>
          <TextField label="Authentication code" value={code} onChange={(e) => setCode(e.target.value)}
            fullWidth margin="normal" required autoComplete="one-time-code" />
          <Button type="submit" variant="contained">Confirm</Button>
        </form>
      ) : (
        <>
          <Typography gutterBottom>
            Staff and admin accounts must use two-factor sign-in (TOTP) before they can manage the shop.
          </Typography>
          <Button variant="contained" onClick={start}>Start</Button>
        </>
      )}
    </Frame>
  );
}
