/**
 * Sequence diagrams for the lab report, built once as data and rendered two ways: Mermaid text
 * (for `report.md`; GitHub and most viewers render it) and a self-contained SVG (for
 * `report.html`, offline, no script). `checkMermaid` parses the Mermaid subset we emit, so every
 * block is known to be valid.
 *
 * @module
 */

/** A lane. */
export interface Participant {
  /** The Mermaid id (letters and digits). */
  id: string;
  /** What it shows. */
  label: string;
}

/** One step of a diagram. */
export type Step =
  | { from: string; to: string; label: string; kind: "call" | "message" | "reply" }
  | { note: string; over: string[] };

/** A sequence diagram. */
export interface Diagram {
  /** Its title. */
  title: string;
  /** The lanes, left to right. */
  participants: Participant[];
  /** The steps, top to bottom. */
  steps: Step[];
}

/** Makes text safe for a Mermaid label (no `;`, `#`, newlines; bounded length). */
export function mermaidText(s: string, max = 120): string {
  const t = s.replace(/[;#\r\n]/g, " ").replace(/[<>]/g, (c) => (c === "<" ? "‹" : "›")).replace(
    /\s+/g,
    " ",
  ).trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t || "-";
}

const ARROWS = { call: "->>", message: "-->>", reply: "-->>" } as const;

/** The diagram as a Mermaid `sequenceDiagram` block (without the fences). */
export function toMermaid(d: Diagram): string {
  const lines = ["sequenceDiagram"];
  for (const p of d.participants) {
    lines.push(`  participant ${p.id} as ${mermaidText(p.label, 60)}`);
  }
  for (const s of d.steps) {
    if ("note" in s) lines.push(`  Note over ${s.over.join(",")}: ${mermaidText(s.note)}`);
    else lines.push(`  ${s.from}${ARROWS[s.kind]}${s.to}: ${mermaidText(s.label)}`);
  }
  return lines.join("\n");
}

/**
 * Parses the subset of Mermaid's sequence-diagram grammar this report uses and returns the
 * problems found (empty when valid): the header, `participant ID as TEXT` before use, messages
 * `A->>B: TEXT` / `A-->>B: TEXT` / `A->B` / `A-->B` / `A-xB` / `A--xB`, `Note over|left of|right
 * of A[,B]: TEXT`, `autonumber`, `%%` comments; labels without `;` or `#`.
 */
export function checkMermaid(text: string): string[] {
  const problems: string[] = [];
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  if (lines[0] !== "sequenceDiagram") {
    problems.push(`line 1: expected "sequenceDiagram", got ${JSON.stringify(lines[0])}`);
  }
  const ids = new Set<string>();
  const label = (n: number, t: string) => {
    if (t.trim() === "") problems.push(`line ${n}: empty label`);
    if (/[;#]/.test(t)) problems.push(`line ${n}: ';' or '#' in a label`);
  };
  lines.slice(1).forEach((line, i) => {
    const n = i + 2;
    let m: RegExpExecArray | null;
    if (line.startsWith("%%") || line === "autonumber") return;
    if ((m = /^participant ([A-Za-z][A-Za-z0-9_]*)(?: as (.+))?$/.exec(line))) {
      if (ids.has(m[1]!)) problems.push(`line ${n}: participant ${m[1]} declared twice`);
      ids.add(m[1]!);
      if (m[2] !== undefined) label(n, m[2]);
      return;
    }
    if (
      (m = /^([A-Za-z][A-Za-z0-9_]*)(->>|-->>|->|-->|-x|--x)([A-Za-z][A-Za-z0-9_]*): (.*)$/.exec(
        line,
      ))
    ) {
      for (const id of [m[1]!, m[3]!]) {
        if (!ids.has(id)) problems.push(`line ${n}: undeclared participant ${id}`);
      }
      label(n, m[4]!);
      return;
    }
    if (
      (m = /^Note (over|left of|right of) ([A-Za-z0-9_]+(?:,[A-Za-z0-9_]+)?): (.*)$/.exec(line))
    ) {
      for (const id of m[2]!.split(",")) {
        if (!ids.has(id)) problems.push(`line ${n}: undeclared participant ${id}`);
      }
      label(n, m[3]!);
      return;
    }
    problems.push(`line ${n}: not understood: ${line}`);
  });
  return problems;
}

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** The diagram as a standalone SVG (inline styles, no script, no external reference). */
export function toSvg(d: Diagram): string {
  const lane = 230;
  const rowH = 34;
  const top = 60;
  const x = new Map(d.participants.map((p, i) => [p.id, 120 + i * lane]));
  const width = 120 * 2 + (d.participants.length - 1) * lane;
  const height = top + d.steps.length * rowH + 50;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Segoe UI, Arial, sans-serif" font-size="12">`,
    `<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>`,
  ];
  for (const p of d.participants) {
    const cx = x.get(p.id)!;
    out.push(
      `<rect x="${
        cx - 100
      }" y="10" width="200" height="30" rx="4" fill="#eef3fb" stroke="#4a6fa5"/>`,
    );
    out.push(`<text x="${cx}" y="30" text-anchor="middle">${esc(mermaidText(p.label, 34))}</text>`);
    out.push(
      `<line x1="${cx}" y1="40" x2="${cx}" y2="${
        height - 10
      }" stroke="#999" stroke-dasharray="4 3"/>`,
    );
  }
  d.steps.forEach((s, i) => {
    const y = top + i * rowH + 10;
    if ("note" in s) {
      const xs = s.over.map((id) => x.get(id)!);
      const left = Math.min(...xs) - 105;
      const right = Math.max(...xs) + 105;
      out.push(
        `<rect x="${left}" y="${y - 12}" width="${
          right - left
        }" height="24" fill="#fff8c5" stroke="#c9b44a"/>`,
      );
      out.push(
        `<text x="${(left + right) / 2}" y="${y + 4}" text-anchor="middle">${
          esc(mermaidText(s.note, 70))
        }</text>`,
      );
    } else {
      const x1 = x.get(s.from)!;
      const x2 = x.get(s.to)!;
      const dash = s.kind === "call" ? "" : ` stroke-dasharray="6 3"`;
      out.push(
        `<line x1="${x1}" y1="${y + 6}" x2="${x2}" y2="${
          y + 6
        }" stroke="#333"${dash} marker-end="url(#a)"/>`,
      );
      out.push(
        `<text x="${(x1 + x2) / 2}" y="${y}" text-anchor="middle">${
          esc(mermaidText(s.label, 48))
        }</text>`,
      );
    }
  });
  out.push("</svg>");
  return out.join("\n");
}
