/**
 * How an example becomes text: a list of segments, each either masked out of the loss (prompt)
 * or trained (completion).
 *
 * Chats are rendered as plain text, one message after another, each opened by its speaker:
 * ```
 * System: {content}\n
 * User: {content}\n
 * Assistant: {content}\n      <- an earlier assistant turn: content and "\n" trained
 * User: {content}\n
 * Assistant: {content}        <- the last message: content trained, then EOS (added when tokenising)
 * ```
 * The speaker labels (`"Assistant: "` included) and every system and user message are masked; the
 * assistant's words and the newline that ends an earlier assistant turn are trained, so the model
 * learns both what to say and when to hand the turn back. A prompt/completion pair is the two
 * segments `prompt` (masked) and `completion` (trained).
 *
 * @module
 */

import type { ChatExample, ChatMessage, PromptCompletion, TextExample } from "./examples.ts";
import { isChat } from "./examples.ts";
import { DataError, formatLocation } from "./errors.ts";

/** A piece of an example's text and whether its tokens are trained. */
export interface Segment {
  /** The text. */
  text: string;
  /** True for completion text (labels kept), false for prompt text (labels -100). */
  trained: boolean;
}

const SPEAKER: Record<ChatMessage["role"], string> = {
  system: "System: ",
  user: "User: ",
  assistant: "Assistant: ",
};

/**
 * The example's text as masked and trained segments, in order (see the module doc for the chat
 * rendering). Concatenated, they are the full training text, without EOS.
 *
 * @example
 * ```ts
 * import { renderSegments } from "../mod.ts";
 * const segs = renderSegments({
 *   messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }],
 * });
 * const text = segs.map((s) => s.text).join("");
 * if (text !== "User: hi\nAssistant: hello") throw new Error(text);
 * ```
 */
export function renderSegments(example: TextExample): Segment[] {
  if (!isChat(example)) {
    return [
      { text: example.prompt, trained: false },
      { text: example.completion, trained: true },
    ];
  }
  const last = example.messages.length - 1;
  if (last < 0 || example.messages[last].role !== "assistant") {
    const which = example.source ? `the chat at ${formatLocation(example.source)}` : "a chat";
    throw new DataError(
      `Cannot render ${which}: its last message must be from the assistant ` +
        "(only assistant messages are trained)",
      [],
    );
  }
  const segments: Segment[] = [];
  example.messages.forEach((m, i) => {
    const newline = i === last ? "" : "\n";
    if (m.role === "assistant") {
      segments.push({ text: SPEAKER.assistant, trained: false });
      segments.push({ text: m.content + newline, trained: true });
    } else {
      segments.push({ text: SPEAKER[m.role] + m.content + newline, trained: false });
    }
  });
  return merge(segments);
}

/**
 * A chat as a prompt/completion pair for evaluation: the prompt is everything before the last
 * assistant message's content (ending in `"Assistant: "`), the completion is that content. The
 * same text as {@linkcode renderSegments}, so a model trained on the chat sees the same prompt.
 *
 * @example
 * ```ts
 * import { chatToPromptCompletion } from "../mod.ts";
 * const pc = chatToPromptCompletion({
 *   messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }],
 * });
 * if (pc.prompt !== "User: hi\nAssistant: " || pc.completion !== "hello") throw new Error();
 * ```
 */
export function chatToPromptCompletion(chat: ChatExample): PromptCompletion {
  const segments = renderSegments(chat);
  const completion = segments[segments.length - 1];
  const prompt = segments.slice(0, -1).map((s) => s.text).join("");
  const out: PromptCompletion = { prompt, completion: completion.text };
  if (chat.task !== undefined) out.task = chat.task;
  if (chat.source !== undefined) out.source = chat.source;
  return out;
}

/** Joins neighbouring segments with the same `trained` flag. */
function merge(segments: Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    const prev = out[out.length - 1];
    if (prev && prev.trained === s.trained) prev.text += s.text;
    else out.push({ ...s });
  }
  return out;
}
