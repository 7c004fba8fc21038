/**
 * Every conformance case, in the order the suite runs them.
 *
 * @module
 */

import type { Case } from "./types.ts";
import { cases as connect } from "./cases_connect.ts";
import { cases as messages } from "./cases_messages.ts";
import { cases as death } from "./cases_death.ts";
import { cases as exceptions } from "./cases_exceptions.ts";
import { cases as alpc } from "./cases_alpc.ts";
import { cases as alpcQuery } from "./cases_alpc_query.ts";
import { cases as views } from "./cases_views.ts";

/** The whole suite. */
export const CASES: readonly Case[] = [
  ...connect,
  ...messages,
  ...death,
  ...exceptions,
  ...alpc,
  ...alpcQuery,
  ...views,
];
