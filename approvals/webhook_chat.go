package approvals

import (
	"strings"
	"time"
	"unicode"
)

// maxChatField bounds each value a chat message carries: agent ids, tool
// names and reasons come from agents and upstreams, untrusted.
const maxChatField = 200

// chatFacts are the lines of a chat notification, in order, with values
// cleaned of control and format characters and capped.
func chatFacts(ev webhookEvent) [][2]string {
	facts := [][2]string{{"Agent", ev.AgentID}, {"Tool", ev.Tool}, {"Server", ev.Server}}
	if ev.TaskID != "" {
		facts = append(facts, [2]string{"Task", ev.TaskID})
	}
	risk := string(ev.Risk)
	if ev.DataClass != "" {
		risk += ", data " + string(ev.DataClass)
	}
	if risk != "" {
		facts = append(facts, [2]string{"Risk", risk})
	}
	if ev.Rule != "" {
		facts = append(facts, [2]string{"Rule", ev.Rule})
	}
	if ev.Reason != "" {
		facts = append(facts, [2]string{"Why", ev.Reason})
	}
	if ev.Required > 1 {
		facts = append(facts, [2]string{"Approvers", "two must approve"})
	}
	facts = append(facts, [2]string{"Expires", ev.Expires.UTC().Format(time.RFC3339)})
	for i := range facts {
		facts[i][1] = chatClean(facts[i][1])
	}
	return facts
}

// chatClean drops control and format characters (bidi overrides, zero
// widths) and cuts s to maxChatField runes.
func chatClean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > maxChatField {
		s = string(r[:maxChatField-1]) + "…"
	}
	return s
}

// slackEscape escapes what Slack reads as markup in any text: &, < and
// > (links, and mentions such as <!channel>).
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackCode shows an untrusted value in mrkdwn as code, which Slack does
// not format (so a tool named *x* or _y_ reads as it is).
func slackCode(s string) string {
	return "`" + slackEscape(strings.ReplaceAll(s, "`", "'")) + "`"
}

// slackMessage is a Slack incoming-webhook body: a plain text fallback,
// a section with the facts and a Review button linking to the page.
func slackMessage(ev webhookEvent) map[string]any {
	facts := chatFacts(ev)
	var b strings.Builder
	b.WriteString("*Approval needed*: " + slackCode(facts[0][1]) + " wants to call " + slackCode(facts[1][1]))
	for _, f := range facts[2:] {
		b.WriteString("\n*" + f[0] + "*: " + slackCode(f[1]))
	}
	text := "Approval needed: " + facts[0][1] + " wants to call " + facts[1][1] + " (" + ev.ApprovalID + ")"
	return map[string]any{
		"text": slackEscape(text),
		"blocks": []any{
			map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": b.String()}},
			map[string]any{"type": "actions", "elements": []any{map[string]any{
				"type": "button", "text": map[string]any{"type": "plain_text", "text": "Review " + ev.ApprovalID},
				"url": ev.URL, "style": "primary"}}},
		},
	}
}

// teamsEscape escapes the Markdown an Adaptive Card's TextBlock and
// FactSet read.
func teamsEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_{}[]()#+-.!<>|~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// teamsMessage is a Microsoft Teams Workflows webhook body: one Adaptive
// Card with the facts and an action opening the page.
func teamsMessage(ev webhookEvent) map[string]any {
	facts := chatFacts(ev)
	set := make([]any, 0, len(facts))
	for _, f := range facts {
		set = append(set, map[string]any{"title": f[0], "value": teamsEscape(f[1])})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body": []any{
			map[string]any{"type": "TextBlock", "text": "Approval needed", "weight": "Bolder", "size": "Medium", "wrap": true},
			map[string]any{"type": "TextBlock", "text": teamsEscape(facts[0][1]) + " wants to call " + teamsEscape(facts[1][1]), "wrap": true},
			map[string]any{"type": "FactSet", "facts": set},
		},
		"actions": []any{map[string]any{"type": "Action.OpenUrl", "title": "Review " + ev.ApprovalID, "url": ev.URL}},
	}
	return map[string]any{"type": "message", "attachments": []any{map[string]any{
		"contentType": "application/vnd.microsoft.card.adaptive", "content": card}}}
}
