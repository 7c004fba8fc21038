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

/**
 * Breaks text into lines of at most `width` characters, at spaces; a word longer than a line is
 * cut into pieces of `width` (nothing is dropped: the lines joined by spaces, or directly where a
 * word was cut, give the text back with its whitespace collapsed).
 */
export function wrapText(s: string, width: number): string[] {
  const words = s.replace(/\s+/g, " ").trim().split(" ").filter((w) => w !== "");
  const lines: string[] = [];
  let line = "";
  for (let w of words) {
    if (line && line.length + 1 + w.length <= width) {
      line += ` ${w}`;
      continue;
    }
    if (line) lines.push(line);
    while (w.length > width) {
      // Inside a word, break after a separator when there is one in the second half of the line.
      const cut = Math.max(...[..."(\\/-_,.|"].map((c) => w.lastIndexOf(c, width - 1))) + 1;
      const at = cut > width / 2 ? cut : width;
      lines.push(w.slice(0, at));
      w = w.slice(at);
    }
    line = w;
  }
  if (line) lines.push(line);
  return lines.length ? lines : [""];
}

/**
 * Makes text safe for a Mermaid label (no `;`, `#` or newline), whole: a long label is wrapped
 * with `<br/>` (Mermaid's line break in messages, notes and participants), never cut.
 */
export function mermaidText(s: string, width = MERMAID_WIDTH): string {
  const t = s.replace(/[;#\r\n]/g, " ").replace(/[<>]/g, (c) => (c === "<" ? "‹" : "›"));
  return wrapText(t, width).join("<br/>") || "-";
}

/** The longest line of a Mermaid label before it is wrapped. */
const MERMAID_WIDTH = 72;

const ARROWS = { call: "->>", message: "-->>", reply: "-->>" } as const;

/** The diagram as a Mermaid `sequenceDiagram` block (without the fences). */
export function toMermaid(d: Diagram): string {
  const lines = ["sequenceDiagram"];
  for (const p of d.participants) {
    lines.push(`  participant ${p.id} as ${mermaidText(p.label, 40)}`);
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

/** SVG layout: an average glyph at font-size 12 is narrower than this, so a wrapped line fits. */
export const SVG_LAYOUT = { charWidth: 7, lineHeight: 15, lane: 230, box: 200, margin: 120 };

/** How many characters fit in `px` at {@link SVG_LAYOUT}'s glyph width. */
export const svgColumns = (px: number): number => Math.floor(px / SVG_LAYOUT.charWidth);

/** The width a message label may take between lanes `span` px apart (a self-message: one lane). */
export const messageRoom = (span: number): number =>
  (span || SVG_LAYOUT.lane) + SVG_LAYOUT.box - 20;

/** A `<text>` of wrapped lines, the first baseline at `y`. */
function svgText(x: number, y: number, lines: string[]): string {
  const spans = lines.map((l, i) =>
    `<tspan x="${x}" dy="${i === 0 ? 0 : SVG_LAYOUT.lineHeight}">${esc(l)}</tspan>`
  ).join("");
  return `<text x="${x}" y="${y}" text-anchor="middle">${spans}</text>`;
}

/**
 * The diagram as a standalone SVG (inline styles, no script, no external reference). Every label
 * is shown whole: wrapped to the width it has (between two lanes, across a note, in a box), each
 * row as tall as its lines.
 */
export function toSvg(d: Diagram): string {
  const { lane, box, margin, lineHeight: lh } = SVG_LAYOUT;
  const x = new Map(d.participants.map((p, i) => [p.id, margin + i * lane]));
  const width = margin * 2 + (d.participants.length - 1) * lane;
  const heads = d.participants.map((p) => wrapText(p.label, svgColumns(box - 10)));
  const headH = Math.max(...heads.map((l) => l.length)) * lh + 15;
  const rows = d.steps.map((s) => {
    if ("note" in s) {
      const xs = s.over.map((id) => x.get(id)!);
      const left = Math.min(...xs) - box / 2 - 5;
      const right = Math.max(...xs) + box / 2 + 5;
      const lines = wrapText(s.note, svgColumns(right - left - 10));
      return { s, lines, left, right, h: lines.length * lh + 16 };
    }
    // A label is centred between its lanes and may reach half a box past each.
    const span = Math.abs(x.get(s.to)! - x.get(s.from)!);
    const lines = wrapText(s.label, svgColumns(messageRoom(span)));
    return { s, lines, left: 0, right: 0, h: lines.length * lh + 16 };
  });
  const top = 10 + headH + 14;
  // The arrowhead's id, unique per diagram: a report holds several SVGs in one document.
  const marker = `arrow-${d.title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "")}`;
  const height = top + rows.reduce((n, r) => n + r.h, 0) + 20;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Segoe UI, Arial, sans-serif" font-size="12">`,
    `<title>${esc(d.title)}</title>`,
    `<defs><marker id="${marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>`,
  ];
  d.participants.forEach((p, i) => {
    const cx = x.get(p.id)!;
    out.push(
      `<rect x="${
        cx - box / 2
      }" y="10" width="${box}" height="${headH}" rx="4" fill="#eef3fb" stroke="#4a6fa5"/>`,
    );
    const lines = heads[i]!;
    out.push(svgText(cx, 10 + (headH - lines.length * lh) / 2 + 11, lines));
    out.push(
      `<line x1="${cx}" y1="${10 + headH}" x2="${cx}" y2="${
        height - 10
      }" stroke="#999" stroke-dasharray="4 3"/>`,
    );
  });
  let y = top;
  for (const r of rows) {
    const s = r.s;
    if ("note" in s) {
      out.push(
        `<rect x="${r.left}" y="${y}" width="${r.right - r.left}" height="${
          r.h - 6
        }" fill="#fff8c5" stroke="#c9b44a"/>`,
      );
      out.push(svgText((r.left + r.right) / 2, y + 15, r.lines));
    } else {
      const x1 = x.get(s.from)!;
      const x2 = x.get(s.to)!;
      const dash = s.kind === "call" ? "" : ` stroke-dasharray="6 3"`;
      const arrowY = y + r.lines.length * lh + 4;
      out.push(svgText((x1 + x2) / 2, y + 11, r.lines));
      out.push(
        `<line x1="${x1}" y1="${arrowY}" x2="${x2}" y2="${arrowY}" stroke="#333"${dash} marker-end="url(#${marker})"/>`,
      );
    }
    y += r.h;
  }
  out.push("</svg>");
  return out.join("\n");
}
