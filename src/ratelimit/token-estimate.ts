// What an LLM request is expected to use, before it is sent: the prompt counted with the model's
// own tokenizer (gpt-tokenizer: o200k_base for the gpt-4o / gpt-4.1 / gpt-5 / o-series families,
// cl100k_base for gpt-4 and gpt-3.5), plus the completion it may produce (max_tokens or
// max_completion_tokens). A model the tokenizer does not know, or a body that is not JSON, is
// estimated at bytes / 4. Encodings load on first use: a gateway without token policies never
// carries them.

import { createRequire } from 'node:module';

export interface TokenEstimate {
  /** The request's `model`, if the body names one. */
  readonly model: string | undefined;
  readonly promptTokens: number;
  /** max_tokens / max_completion_tokens / max_output_tokens when set, else 0. */
  readonly completionTokens: number;
  /** What is reserved: prompt + completion, at least 1. */
  readonly total: number;
}

type Counter = (text: string) => number;
type EncodingName = 'o200k_base' | 'cl100k_base';

const require = createRequire(import.meta.url);
const counters = new Map<EncodingName, Counter>();
let modelMap: Record<string, string> | undefined;

function counter(encoding: EncodingName): Counter {
  let count = counters.get(encoding);
  if (count === undefined) {
    const module = require(`gpt-tokenizer/cjs/encoding/${encoding}`) as { countTokens: Counter };
    count = (text) => module.countTokens(text);
    counters.set(encoding, count);
  }
  return count;
}

/** The tokenizer encoding of a model, or undefined when the model is not an OpenAI one the tokenizer knows. */
export function encodingFor(model: string | undefined): EncodingName | undefined {
  if (!model) return undefined;
  modelMap ??= (require('gpt-tokenizer/cjs/mapping') as { modelToEncodingMap: Record<string, string> }).modelToEncodingMap;
  const known = modelMap[model];
  if (known === 'o200k_base' || known === 'o200k_harmony') return 'o200k_base';
  if (known === 'cl100k_base') return 'cl100k_base';
  // Dated or fine-tuned variants ("gpt-4o-mini-2024-07-18", "ft:gpt-4o:org::id").
  const base = model.startsWith('ft:') ? model.slice(3) : model;
  if (/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|chatgpt-4o|gpt-oss)/.test(base)) return 'o200k_base';
  if (/^(gpt-4|gpt-3\.5|text-embedding)/.test(base)) return 'cl100k_base';
  return undefined;
}

/** Tokens a message costs beyond its text (role and separators), as OpenAI's cookbook counts them. */
const PER_MESSAGE = 4;
const REPLY_PRIMER = 3;

/** Every prompt text of a chat, completion, embedding or responses request. */
function promptTexts(body: Record<string, unknown>, out: string[]): number {
  let messages = 0;
  const add = (value: unknown): void => {
    if (typeof value === 'string') out.push(value);
    else if (Array.isArray(value)) for (const item of value) add(item);
    else if (value && typeof value === 'object') {
      const part = value as Record<string, unknown>;
      if (typeof part.text === 'string') out.push(part.text);
      if (part.content !== undefined) add(part.content);
      if (typeof part.arguments === 'string') out.push(part.arguments);
    }
  };
  if (Array.isArray(body.messages)) {
    for (const message of body.messages) {
      messages++;
      if (message && typeof message === 'object') {
        const m = message as Record<string, unknown>;
        if (typeof m.role === 'string') out.push(m.role);
        if (typeof m.name === 'string') out.push(m.name);
        add(m.content);
        if (Array.isArray(m.tool_calls)) for (const call of m.tool_calls) add((call as { function?: unknown }).function);
      }
    }
  }
  add(body.prompt);
  add(body.input);
  add(body.instructions);
  if (body.tools !== undefined) out.push(JSON.stringify(body.tools));
  return messages;
}

function completionBudget(body: Record<string, unknown>): number {
  for (const field of ['max_completion_tokens', 'max_tokens', 'max_output_tokens']) {
    const value = body[field];
    if (typeof value === 'number' && Number.isFinite(value) && value > 0) return Math.floor(value);
  }
  return 0;
}

/** Estimates a request from its body (`json` when it parsed as a JSON object). */
export function estimateTokens(raw: Buffer | undefined, json: Record<string, unknown> | undefined): TokenEstimate {
  const bytes = raw?.length ?? 0;
  if (json === undefined) {
    const promptTokens = Math.ceil(bytes / 4);
    return { model: undefined, promptTokens, completionTokens: 0, total: Math.max(1, promptTokens) };
  }
  const model = typeof json.model === 'string' ? json.model : undefined;
  const completionTokens = completionBudget(json);
  const encoding = encodingFor(model);
  let promptTokens: number;
  if (encoding === undefined) {
    promptTokens = Math.ceil(bytes / 4);
  } else {
    const texts: string[] = [];
    const messages = promptTexts(json, texts);
    const count = counter(encoding);
    promptTokens = messages > 0 ? messages * PER_MESSAGE + REPLY_PRIMER : 0;
    for (const text of texts) promptTokens += count(text);
  }
  return { model, promptTokens, completionTokens, total: Math.max(1, promptTokens + completionTokens) };
}

/** Tokens of a streamed answer's text (for an answer that ended without `usage`). */
export function countTextTokens(model: string | undefined, text: string): number {
  const encoding = encodingFor(model);
  return encoding === undefined ? Math.ceil(Buffer.byteLength(text) / 4) : counter(encoding)(text);
}

/** The body as a JSON object, or undefined (not JSON, not an object). Never throws. */
export function parseJsonObject(raw: Buffer | undefined): Record<string, unknown> | undefined {
  if (raw === undefined || raw.length === 0) return undefined;
  const first = raw[0] === 0xef ? 3 : 0; // a UTF-8 BOM
  let i = first;
  while (i < raw.length && (raw[i] === 0x20 || raw[i] === 0x0a || raw[i] === 0x0d || raw[i] === 0x09)) i++;
  if (raw[i] !== 0x7b) return undefined;
  try {
    const value: unknown = JSON.parse(raw.toString('utf8', first));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
