// One YAML file's text → its documents, each with a way back from a JSON path to the line and
// column it came from, so that a schema error can point at the offending node. js-yaml's event
// stream carries offsets; one pass over it records where each node (and each mapping key) starts.
import {
  boolYaml11Tag,
  constructFromEvents,
  EVENT_ID,
  type Event,
  floatYaml11Tag,
  getScalarValue,
  intYaml11Tag,
  mapTag,
  mergeTag,
  nullYaml11Tag,
  parseEvents,
  SCALAR_STYLE,
  type ScalarEvent,
  Schema,
  seqTag,
  strTag,
  YAMLException,
} from "js-yaml";
import type { Diagnostic, SourcePosition } from "../types";

export type JsonPath = ReadonlyArray<string | number>;

export interface YamlDocument {
  value: unknown;
  /** Where the document's content starts (its first key, for a mapping). */
  start: SourcePosition;
  /** Where the node at `path` starts; the nearest existing ancestor when there is no such node. */
  positionOf(path: JsonPath): SourcePosition;
  /**
   * Where the key of the mapping entry at `path` starts, else the node itself: the place for "this
   * field is unknown" and "this mapping lacks a field", which are about the entry, not its value.
   */
  keyPositionOf(path: JsonPath): SourcePosition;
}

export interface ParsedYaml {
  documents: YamlDocument[];
  /** Set when the file is not valid YAML; then `documents` is empty. */
  error?: Diagnostic;
}

// Scalars resolve as kubectl resolves them (go-yaml v2, YAML 1.1), so that a manifest means here
// what it means to Kubernetes: `defaultMode: 0644` is octal, `yes`/`on` are booleans, `<<: *base`
// merges. Timestamps, binary, sets and pairs stay out: Kubernetes reads them as strings or not at all.
const SCHEMA = new Schema([strTag, seqTag, mapTag, nullYaml11Tag, boolYaml11Tag, intYaml11Tag, floatYaml11Tag, mergeTag]);

// Aliases let a few lines expand into a huge (or, with a self-reference, endless) tree; a document
// that uses them is walked once with this budget before anything else touches it.
const MAX_EXPANDED_NODES = 100_000;

export function parseYamlDocuments(text: string, file: string): ParsedYaml {
  // js-yaml skips a byte-order mark but counts it in offsets; without it columns match editors.
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = new LineIndex(source, file);
  let events: Event[];
  let values: unknown[];
  try {
    events = parseEvents(source, { filename: file });
    values = constructFromEvents(events, { source, filename: file, schema: SCHEMA });
  } catch (err) {
    return { documents: [], error: syntaxDiagnostic(err, lines) };
  }
  const maps = recordPositions(events, source);
  const documents: YamlDocument[] = [];
  for (let i = 0; i < maps.length; i++) {
    const value = values[i];
    const map = maps[i];
    // An empty document (a lone `---`, only comments) declares nothing; kubectl skips it too.
    if (value === null || value === undefined || map.root < 0) continue;
    if (map.hasAlias && exceedsNodeBudget(value, MAX_EXPANDED_NODES)) {
      const at = lines.position(map.root);
      return { documents: [], error: { ...at, field: "", message: `YAML aliases in this document expand to more than ${MAX_EXPANDED_NODES} nodes (or refer to themselves); write the repeated parts out` } };
    }
    documents.push(makeDocument(value, map, lines));
  }
  return { documents };
}

function syntaxDiagnostic(err: unknown, lines: LineIndex): Diagnostic {
  if (err instanceof YAMLException) {
    // mark.line and mark.column are 0-based; reason is the message without the source snippet.
    const line = (err.mark?.line ?? 0) + 1;
    const column = (err.mark?.column ?? 0) + 1;
    return { file: lines.file, line, column, field: "", message: `invalid YAML: ${err.reason || err.message}` };
  }
  return { file: lines.file, line: 1, column: 1, field: "", message: `invalid YAML: ${(err as Error).message ?? String(err)}` };
}

interface DocumentMap {
  /** Offset of the document's root node, -1 for an empty document. */
  root: number;
  nodes: Map<string, number>;
  keys: Map<string, number>;
  hasAlias: boolean;
}

const pathKey = (path: JsonPath): string => path.join("\u0000");

function makeDocument(value: unknown, map: DocumentMap, lines: LineIndex): YamlDocument {
  const nodeOffset = (path: JsonPath): number => {
    for (let n = path.length; n > 0; n--) {
      const at = map.nodes.get(pathKey(path.slice(0, n)));
      if (at !== undefined) return at;
    }
    return map.root;
  };
  return {
    value,
    start: lines.position(map.root),
    positionOf: (path) => lines.position(nodeOffset(path)),
    keyPositionOf: (path) => lines.position(map.keys.get(pathKey(path)) ?? nodeOffset(path)),
  };
}

interface Frame {
  /** null inside a complex mapping key, whose contents have no JSON path. */
  path: JsonPath | null;
  sequence: boolean;
  index: number;
  expectKey: boolean;
  key: string | null;
  keyOffset: number;
  /** Where the collection starts: the fallback for an item that is an empty scalar. */
  offset: number;
}

/** One pass over the events: per document, the offset where each node and each mapping key starts. */
function recordPositions(events: Event[], source: string): DocumentMap[] {
  const docs: DocumentMap[] = [];
  let doc: DocumentMap | undefined;
  const stack: Frame[] = [];
  for (const ev of events) {
    if (ev.type === EVENT_ID.DOCUMENT) {
      doc = { root: -1, nodes: new Map(), keys: new Map(), hasAlias: false };
      docs.push(doc);
      continue;
    }
    if (!doc) continue;
    if (ev.type === EVENT_ID.POP) {
      stack.pop();
      continue;
    }
    if (ev.type === EVENT_ID.ALIAS) doc.hasAlias = true;
    const parent = stack.at(-1);
    if (parent && !parent.sequence && parent.expectKey) {
      // A mapping key: remember it for the value that follows. Keys that are collections or aliases
      // are refused by the constructor, so they only need their events skipped.
      parent.expectKey = false;
      parent.key = ev.type === EVENT_ID.SCALAR ? getScalarValue(source, ev) : null;
      parent.keyOffset = ev.type === EVENT_ID.SCALAR ? nodeStart(ev, source, -1) : -1;
      if (ev.type === EVENT_ID.MAPPING || ev.type === EVENT_ID.SEQUENCE) stack.push(frame(null, ev.type === EVENT_ID.SEQUENCE, ev.start));
      continue;
    }
    let path: JsonPath | null;
    let fallback: number;
    if (!parent) {
      path = [];
      fallback = -1;
    } else if (parent.sequence) {
      path = parent.path && [...parent.path, parent.index];
      parent.index++;
      fallback = parent.offset;
    } else {
      path = parent.path && parent.key !== null ? [...parent.path, parent.key] : null;
      fallback = parent.keyOffset;
      parent.expectKey = true;
    }
    const offset = nodeStart(ev, source, fallback);
    if (path) {
      doc.nodes.set(pathKey(path), offset);
      if (parent && !parent.sequence && parent.keyOffset >= 0) doc.keys.set(pathKey(path), parent.keyOffset);
    }
    if (!parent) doc.root = ev.type === EVENT_ID.SCALAR && ev.valueStart < 0 ? -1 : offset;
    if (ev.type === EVENT_ID.MAPPING || ev.type === EVENT_ID.SEQUENCE) stack.push(frame(path, ev.type === EVENT_ID.SEQUENCE, offset));
  }
  return docs;
}

function frame(path: JsonPath | null, sequence: boolean, offset: number): Frame {
  return { path, sequence, index: 0, expectKey: !sequence, key: null, keyOffset: -1, offset };
}

/** The offset of a node's first character, its tag or anchor included. */
function nodeStart(ev: Exclude<Event, { type: typeof EVENT_ID.DOCUMENT | typeof EVENT_ID.POP }>, source: string, fallback: number): number {
  if (ev.type === EVENT_ID.ALIAS) return ev.anchorStart - 1; // the `*`
  const props = earliest(ev.tagStart, ev.anchorStart >= 0 ? ev.anchorStart - 1 : -1);
  if (ev.type === EVENT_ID.SCALAR) return earliest(props, scalarStart(ev, source, fallback));
  return earliest(props, ev.start);
}

function scalarStart(ev: ScalarEvent, source: string, fallback: number): number {
  // An empty value (`image:` and nothing) has no text: point at its key, or its collection.
  if (ev.valueStart < 0) return fallback;
  if (ev.style === SCALAR_STYLE.SINGLE_QUOTED || ev.style === SCALAR_STYLE.DOUBLE_QUOTED) return ev.valueStart - 1;
  if (ev.style === SCALAR_STYLE.LITERAL_BLOCK || ev.style === SCALAR_STYLE.FOLDED_BLOCK) {
    // A block scalar's value starts at the beginning of its first content line: skip the indent.
    let at = ev.valueStart;
    while (at < ev.valueEnd && (source[at] === " " || source[at] === "\n" || source[at] === "\r")) at++;
    return at < ev.valueEnd ? at : ev.valueStart;
  }
  return ev.valueStart;
}

function earliest(a: number, b: number): number {
  if (a < 0) return b;
  if (b < 0) return a;
  return Math.min(a, b);
}

/** Whether walking `value` (aliases expanded, cycles followed) visits more than `limit` nodes. */
function exceedsNodeBudget(value: unknown, limit: number): boolean {
  const todo: unknown[] = [value];
  let seen = 1;
  while (todo.length > 0) {
    const v = todo.pop();
    if (v === null || typeof v !== "object") continue;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (++seen > limit) return true;
      todo.push(child);
    }
  }
  return false;
}

/** Offsets → 1-based line and column (columns count UTF-16 units, as editors mostly do). */
class LineIndex {
  private readonly starts: number[] = [0];
  constructor(
    text: string,
    readonly file: string,
  ) {
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) this.starts.push(i + 1);
  }

  position(offset: number): SourcePosition {
    if (offset < 0) return { file: this.file, line: 1, column: 1 };
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { file: this.file, line: lo + 1, column: offset - this.starts[lo] + 1 };
  }
}
