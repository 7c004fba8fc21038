/**
 * Records tests/fixtures/ports_graph_fake.json: the ports@2 document listPorts() writes for a fake
 * system (csrss protected, a lab server and its client, a port with an awkward name), walk and
 * graph (with waits) included. With `beacon`, tests/fixtures/ports_graph_beacon.json: the lab's
 * beacon (lab_beacon.ts) up while the walk runs: its LPC and ALPC ports served by process 5000,
 * its client process 5100 connected to both, beside csrss. No Windows was at hand to record a
 * real one.
 *
 * ```sh
 * deno run --allow-read tests/experiments/_record_ports_graph.ts > tests/fixtures/ports_graph_fake.json
 * deno run --allow-read tests/experiments/_record_ports_graph.ts beacon > tests/fixtures/ports_graph_beacon.json
 * ```
 *
 * @module
 */

import { listPorts } from "../../experiments/ports/list_ports.ts";
import { type FakeProcess, fakeSystem } from "./_port_graph_fake.ts";
const sys: Record<number, FakeProcess> = {
  500: { image: "csrss.exe", refuse: "protected", ports: [{ name: "\\Windows\\ApiPort" }] },
  2000: {
    image: "deno.exe",
    ports: [{ name: "\\RPC Control\\deno-lpc-exp1-1a2b", other: 2000 }, { other: 2100 }, {
      other: 500,
    }],
    threads: [{
      tid: 2001,
      answer: {
        blocked: true,
        connectedProcessId: 2100,
        connectionPortName: "\\RPC Control\\deno-lpc-exp1-1a2b",
      },
    }],
  },
  2100: {
    image: "deno.exe",
    ports: [{ other: 2000 }, { other: 500 }],
    threads: [{
      tid: 2104,
      answer: {
        blocked: true,
        connectedProcessId: 2000,
        connectionPortName: "\\RPC Control\\deno-lpc-exp1-1a2b",
      },
    }],
  },
  3000: {
    image: "odd name.exe",
    ports: [{ name: '\\RPC Control\\say "hi" #1 <b>|x|</b>', other: 3000 }, { other: 3100 }],
  },
  3100: { image: "client.exe", ports: [{ other: 3000 }] },
};
/** The beacon's ports, as lab_beacon.ts names them (runPortName). */
export const BEACON_PORTS = [
  "\\RPC Control\\deno-lpc-lab-beacon-lpc-5000-mb3k2x",
  "\\RPC Control\\deno-lpc-lab-beacon-alpc-5000-mb3k2y",
];
const beacon: Record<number, FakeProcess> = {
  500: { image: "csrss.exe", refuse: "protected", ports: [{ name: "\\Windows\\ApiPort" }] },
  5000: {
    image: "deno.exe",
    ports: [
      { name: BEACON_PORTS[0]!, other: 5000 },
      { name: BEACON_PORTS[1]!, other: 5000 },
      { other: 5100 },
      { other: 5100 },
    ],
  },
  5100: { image: "deno.exe", ports: [{ other: 5000 }, { other: 5000 }, { other: 500 }] },
};
const recordBeacon = Deno.args[0] === "beacon";
const doc = listPorts({
  root: "\\",
  types: ["ALPC Port"],
  all: false,
  servers: false,
  mode: "auto",
  source: {
    list: (p) =>
      p === "\\"
        ? [{ name: "Windows", type: "Directory" }, { name: "RPC Control", type: "Directory" }]
        : p === "\\Windows"
        ? [{ name: "ApiPort", type: "ALPC Port" }]
        : recordBeacon
        ? BEACON_PORTS.map((n) => ({ name: n.split("\\").at(-1)!, type: "ALPC Port" }))
        : [{ name: "deno-lpc-exp1-1a2b", type: "ALPC Port" }, {
          name: 'say "hi" #1 <b>|x|</b>',
          type: "ALPC Port",
        }],
    readLink: () => "",
  },
  graph: { waits: true, source: fakeSystem(recordBeacon ? beacon : sys) },
});
if (import.meta.main) console.log(JSON.stringify(doc, null, 2));
