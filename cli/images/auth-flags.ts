// --creds USER[:PASS] and --auth BASE64, as crictl pull takes them.
import type { AuthConfig } from "../../cri/types";

export const authFlags = {
  creds: { type: "string" },
  auth: { type: "string" },
} as const;

export function authFromFlags(values: { creds?: string; auth?: string }): Partial<AuthConfig> | undefined {
  if (values.auth) return { auth: values.auth };
  if (values.creds) {
    const at = values.creds.indexOf(":");
    return at < 0 ? { username: values.creds } : { username: values.creds.slice(0, at), password: values.creds.slice(at + 1) };
  }
  return undefined;
}
