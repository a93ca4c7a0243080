// Child process for select.test.ts: prints describeAccel(accel()) for the IMDB_ACCEL it was
// started with, or "error <code>" if selection refused.
import { AccelError, accel, describeAccel } from "../../src/accel/index.ts";

try {
  console.log(describeAccel(accel()));
} catch (e) {
  console.log(e instanceof AccelError ? `error ${e.code}` : `error ${String(e)}`);
}
