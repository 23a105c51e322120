// Package judge is the optional LLM judge: a second opinion on whether a
// tool call is consistent with the purpose its task declared. It asks any
// OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM, ...)
// for a consistency score between 0 and 1 and a one-sentence rationale,
// using JSON-schema structured output, and turns the score into a
// mediator.JudgeResult.
//
// # Tighten only
//
// The judge is opt-in and can only make a decision stricter. A score at or
// above Config.Threshold is EffectAllow ("no objection", which leaves the
// policy decision as it is); a score below it is Config.Below (EffectApprove
// by default, or EffectDeny). The mediator combines the opinion with the
// policy decision and keeps the stricter of the two, so the judge can turn
// allow into approve or deny, and approve into deny, but never the reverse.
//
// The judge never returns an error. When it cannot give an opinion (timeout,
// all Config.Concurrency slots busy, HTTP error, a reply that is not exactly
// the expected JSON object, a refusal) the result is Config.Fallback
// (EffectApprove by default) with JudgeResult.Fallback naming the reason and
// Score 0. Fallbacks are never cached.
//
// Opinions are cached per task, tool and argument shape (the sorted
// top-level argument names with their JSON types, not their values; the
// purpose and tool description are part of the key too), so repeated calls
// of the same kind cost one model request per Config.CacheTTL. The cached
// opinion is about the kind of call: a later call with other values, or
// after other recent calls, gets the same opinion until it expires. Set
// Config.CacheSize negative to ask the model about every call.
//
// # What is sent to the model (data protection)
//
// Operators must know that every judged call sends the following to the
// configured endpoint, which may be a third party:
//   - the task's declared purpose (at most 2 KiB);
//   - the tool's catalog name and its description as the upstream server
//     supplied it (at most 2 KiB);
//   - the call's arguments, as the caller passes them in Request.Arguments
//     (at most 8 KiB of JSON; longer arguments are sent cut short, as a
//     string). The judge does not redact anything itself: the caller must
//     redact secrets and personal data before calling Judge;
//   - the session's recent calls (at most Config.MaxRecent, each with tool
//     name, the caller's already redacted and capped arguments, at most
//     1 KiB, and the verdict it received).
//
// Nothing else is sent: no agent identity, credentials, task id or
// addresses. The API key goes only into the Authorization header and is
// never logged or included in a result. Use a local model (Ollama, vLLM) to
// keep call data in-house.
//
// The tool description and the arguments are untrusted: they come from
// upstream servers and agents and may carry prompt injections. They are sent
// inside a JSON document in the user message, never in the system prompt,
// and the system prompt tells the model to treat them as data and to score
// any attempt to instruct it as a sign of an inconsistent call. A model can
// still be fooled, which is one more reason the judge can only tighten.
//
// # Bounds
//
// Every size is bounded: the user message as above; the reply to 200
// tokens (2048 for a model go-openai knows as a reasoning model, whose
// hidden reasoning counts too); a response body over 1 MiB
// (MaxResponseBytes) fails the request and falls back; the rationale is cut
// to 500 bytes with control characters removed. Each judgement, including the wait for a free
// concurrency slot, takes at most Config.Timeout.
package judge
