import { TributaryError } from "../errors.ts";

const GROUP_NAME = /^[a-zA-Z0-9._\-:$]{1,249}$/;

/** Fails BAD_REQUEST unless `group` is a valid group name. */
export function checkGroupName(group: string): void {
  if (typeof group !== "string" || !GROUP_NAME.test(group)) {
    throw new TributaryError("BAD_REQUEST", `group name must match ${GROUP_NAME.source}`, { group });
  }
}
