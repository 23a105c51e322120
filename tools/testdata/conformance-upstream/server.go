package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Fixed payloads the conformance scenarios look for.
const (
	// testImagePNG is a 1x1 PNG, base64-encoded.
	testImagePNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
	// testAudioWAV is a minimal WAV file, base64-encoded.
	testAudioWAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

	// logLoggerName is the logger name carried by notifications/message.
	logLoggerName = "conformance-test-server"

	// notificationGap is the pause between the notifications of the logging
	// and progress tools; the scenarios ask for about 50 ms.
	notificationGap = 50 * time.Millisecond

	// settleDelay is how long the logging and progress tools wait after their
	// last notification before returning. mcp-go v1.2.1 hands notifications
	// to a forwarder goroutine while the response is written by the request
	// goroutine: over streamable HTTP a notification queued just before the
	// handler returns is often dropped (the forwarder sees the request done),
	// and over stdio it can be written after the response. Waiting lets the
	// forwarder deliver it first.
	settleDelay = 50 * time.Millisecond
)

// jsonSchema2020Input is the raw input schema of json_schema_2020_12_tool. The
// json-schema-2020-12 scenario checks that $schema, $defs and
// additionalProperties survive tools/list untouched.
const jsonSchema2020Input = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "$defs": {
    "address": {
      "type": "object",
      "properties": {
        "street": {"type": "string"},
        "city": {"type": "string"}
      }
    }
  },
  "properties": {
    "name": {"type": "string"},
    "address": {"$ref": "#/$defs/address"}
  },
  "additionalProperties": false
}`

// emptyInput is the input schema of the tools that take no arguments.
const emptyInput = `{"type":"object","properties":{},"additionalProperties":false}`

// conformance holds the server and the per-session state the handlers need.
type conformance struct {
	srv *server.MCPServer

	// levelSet records the sessions that sent logging/setLevel. A session
	// that never did gets every log notification (the TypeScript SDK's
	// behaviour); one that did gets only messages at or above its level.
	levelSet sync.Map // session id -> struct{}
}

// newServer builds the MCP server with every tool, resource, prompt and
// capability the conformance server scenarios exercise.
func newServer(logger *slog.Logger) *server.MCPServer {
	c := &conformance{}

	hooks := &server.Hooks{}
	hooks.AddAfterSetLevel(func(ctx context.Context, _ any, req *mcp.SetLevelRequest, _ *mcp.EmptyResult) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			c.levelSet.Store(session.SessionID(), struct{}{})
			logger.Debug("client set log level", "session", session.SessionID(), "level", req.Params.Level)
		}
	})
	hooks.AddOnUnregisterSession(func(_ context.Context, session server.ClientSession) {
		c.levelSet.Delete(session.SessionID())
	})

	c.srv = server.NewMCPServer(serverName, version,
		server.WithTitle("MCP conformance test upstream"),
		server.WithInstructions("Test server for the MCP conformance suite's server scenarios. Not for production use."),
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true),
		server.WithLogging(),
		server.WithElicitation(),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(promptCompletions{}),
		server.WithResourceCompletionProvider(resourceCompletions{}),
		server.WithHooks(hooks),
		server.WithRecovery(),
		server.WithLogger(logger),
	)
	c.srv.EnableSampling()

	c.addTools()
	addResources(c.srv)
	addPrompts(c.srv)
	return c.srv
}

// noArgTool returns a tool that takes no arguments.
func noArgTool(name, title, description string) mcp.Tool {
	return mcp.Tool{
		Name:           name,
		Title:          title,
		Description:    description,
		RawInputSchema: json.RawMessage(emptyInput),
		Annotations: mcp.ToolAnnotation{
			Title:           title,
			ReadOnlyHint:    mcp.ToBoolPtr(true),
			DestructiveHint: mcp.ToBoolPtr(false),
			IdempotentHint:  mcp.ToBoolPtr(true),
			OpenWorldHint:   mcp.ToBoolPtr(false),
		},
	}
}

// addTools registers every test tool.
func (c *conformance) addTools() {
	s := c.srv

	s.AddTool(noArgTool("test_simple_text", "Simple text", "Returns a simple text content block."),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("This is a simple text response for testing."), nil
		})

	s.AddTool(noArgTool("test_image_content", "Image content", "Returns a 1x1 PNG image content block."),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewImageContent(testImagePNG, "image/png")}}, nil
		})

	s.AddTool(noArgTool("test_audio_content", "Audio content", "Returns a minimal WAV audio content block."),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewAudioContent(testAudioWAV, "audio/wav")}}, nil
		})

	s.AddTool(noArgTool("test_embedded_resource", "Embedded resource", "Returns an embedded text resource."),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewEmbeddedResource(mcp.TextResourceContents{
				URI:      "test://embedded-resource",
				MIMEType: "text/plain",
				Text:     "This is an embedded resource content.",
			})}}, nil
		})

	s.AddTool(noArgTool("test_multiple_content_types", "Mixed content", "Returns text, image and embedded resource content blocks."),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{
				mcp.NewTextContent("Multiple content types test:"),
				mcp.NewImageContent(testImagePNG, "image/png"),
				mcp.NewEmbeddedResource(mcp.TextResourceContents{
					URI:      "test://mixed-content-resource",
					MIMEType: "application/json",
					Text:     `{"test":"data","value":123}`,
				}),
			}}, nil
		})

	s.AddTool(noArgTool("test_tool_with_logging", "Logging", "Sends three info-level log notifications about 50 ms apart while it runs."),
		c.toolWithLogging)

	s.AddTool(noArgTool("test_tool_with_progress", "Progress", "Sends progress notifications 0/100, 50/100 and 100/100 about 50 ms apart when the call carries a progress token."),
		c.toolWithProgress)

	s.AddTool(noArgTool("test_error_handling", "Error", "Always fails with a tool error (isError: true)."),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultError("This tool intentionally returns an error for testing"), nil
		})

	s.AddTool(noArgTool("test_reconnection", "Reconnection",
		"SEP-1699 reconnection test. The suite expects the server to close the SSE stream mid-call; "+
			"mcp-go has no API for that, so this tool simply completes normally."),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure."), nil
		})

	samplingTool := mcp.NewTool("test_sampling",
		mcp.WithTitleAnnotation("Sampling"),
		mcp.WithDescription("Asks the client's LLM to answer the prompt (sampling/createMessage) and returns the answer."),
		mcp.WithString("prompt", mcp.Description("The prompt to send to the LLM"), mcp.Required()),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
	s.AddTool(samplingTool, c.toolSampling)

	elicitationTool := mcp.NewTool("test_elicitation",
		mcp.WithTitleAnnotation("Elicitation"),
		mcp.WithDescription("Asks the user for a username and email (elicitation/create) and returns the answer."),
		mcp.WithString("message", mcp.Description("The message to show the user"), mcp.Required()),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
	s.AddTool(elicitationTool, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return elicit(req, "User response", mcp.ElicitationParams{
			Mode:    mcp.ElicitationModeForm,
			Message: req.GetString("message", ""),
			RequestedSchema: map[string]any{
				"type": "object",
				"properties": map[string]any{
					"username": map[string]any{"type": "string", "description": "User's response"},
					"email":    map[string]any{"type": "string", "description": "User's email address"},
				},
				"required": []string{"username", "email"},
			},
		}), nil
	})

	s.AddTool(noArgTool("test_elicitation_sep1034_defaults", "Elicitation defaults",
		"Requests elicitation with a default value for every primitive type (SEP-1034)."),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return elicit(req, "Elicitation completed", mcp.ElicitationParams{
				Mode:    mcp.ElicitationModeForm,
				Message: "Please review and update the form fields with defaults",
				RequestedSchema: map[string]any{
					"type": "object",
					"properties": map[string]any{
						"name":     map[string]any{"type": "string", "description": "User name", "default": "John Doe"},
						"age":      map[string]any{"type": "integer", "description": "User age", "default": 30},
						"score":    map[string]any{"type": "number", "description": "User score", "default": 95.5},
						"status":   map[string]any{"type": "string", "description": "User status", "enum": []string{"active", "inactive", "pending"}, "default": "active"},
						"verified": map[string]any{"type": "boolean", "description": "Verification status", "default": true},
					},
					"required": []string{},
				},
			}), nil
		})

	s.AddTool(noArgTool("test_elicitation_sep1330_enums", "Elicitation enums",
		"Requests elicitation with all five enum schema variants (SEP-1330)."),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return elicit(req, "Elicitation completed", mcp.ElicitationParams{
				Mode:    mcp.ElicitationModeForm,
				Message: "Please select options from the enum fields",
				RequestedSchema: map[string]any{
					"type": "object",
					"properties": map[string]any{
						"untitledSingle": map[string]any{
							"type": "string", "description": "Select one option",
							"enum": []string{"option1", "option2", "option3"},
						},
						"titledSingle": map[string]any{
							"type": "string", "description": "Select one option with titles",
							"oneOf": []any{
								map[string]any{"const": "value1", "title": "First Option"},
								map[string]any{"const": "value2", "title": "Second Option"},
								map[string]any{"const": "value3", "title": "Third Option"},
							},
						},
						"legacyEnum": map[string]any{
							"type": "string", "description": "Select one option (legacy)",
							"enum":      []string{"opt1", "opt2", "opt3"},
							"enumNames": []string{"Option One", "Option Two", "Option Three"},
						},
						"untitledMulti": map[string]any{
							"type": "array", "description": "Select multiple options", "minItems": 1, "maxItems": 3,
							"items": map[string]any{"type": "string", "enum": []string{"option1", "option2", "option3"}},
						},
						"titledMulti": map[string]any{
							"type": "array", "description": "Select multiple options with titles", "minItems": 1, "maxItems": 3,
							"items": map[string]any{"anyOf": []any{
								map[string]any{"const": "value1", "title": "First Choice"},
								map[string]any{"const": "value2", "title": "Second Choice"},
								map[string]any{"const": "value3", "title": "Third Choice"},
							}},
						},
					},
					"required": []string{},
				},
			}), nil
		})

	schemaTool := mcp.Tool{
		Name:           "json_schema_2020_12_tool",
		Description:    "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613).",
		RawInputSchema: json.RawMessage(jsonSchema2020Input),
		Annotations: mcp.ToolAnnotation{
			Title:           "JSON Schema 2020-12",
			ReadOnlyHint:    mcp.ToBoolPtr(true),
			DestructiveHint: mcp.ToBoolPtr(false),
			IdempotentHint:  mcp.ToBoolPtr(true),
			OpenWorldHint:   mcp.ToBoolPtr(false),
		},
	}
	s.AddTool(schemaTool, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args, err := json.Marshal(req.GetArguments())
		if err != nil {
			return nil, fmt.Errorf("encode arguments: %w", err)
		}
		return mcp.NewToolResultText("JSON Schema 2020-12 tool called with: " + string(args)), nil
	})
}

// sendLog sends one notifications/message for the request in ctx.
//
// With protocol 2026-07-28 and later the level travels with each request and
// mcp-go applies it. With earlier revisions a session that set a level with
// logging/setLevel gets messages at or above it, and a session that never did
// gets them all, as the reference (TypeScript) conformance server does.
// mcp-go's own default for an unset stdio session is "error", which would
// drop info messages, hence the bookkeeping.
func (c *conformance) sendLog(ctx context.Context, level mcp.LoggingLevel, message string) error {
	session := server.ClientSessionFromContext(ctx)
	info := server.RequestProtocolInfoFromContext(ctx)
	_, levelSet := c.levelSet.Load(sessionID(session))
	if (info != nil && info.Modern) || levelSet {
		if err := c.srv.SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(level, logLoggerName, message)); err != nil {
			return fmt.Errorf("send log message: %w", err)
		}
		return nil
	}
	if err := c.srv.SendNotificationToClient(ctx, string(mcp.MethodNotificationMessage), map[string]any{
		"level":  level,
		"logger": logLoggerName,
		"data":   message,
	}); err != nil {
		return fmt.Errorf("send log notification: %w", err)
	}
	return nil
}

// sessionID returns the id of session, or "" when there is none.
func sessionID(session server.ClientSession) string {
	if session == nil {
		return ""
	}
	return session.SessionID()
}

// toolWithLogging implements test_tool_with_logging.
func (c *conformance) toolWithLogging(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	for i, message := range []string{"Tool execution started", "Tool processing data", "Tool execution completed"} {
		if i > 0 {
			if err := sleep(ctx, notificationGap); err != nil {
				return nil, err
			}
		}
		if err := c.sendLog(ctx, mcp.LoggingLevelInfo, message); err != nil {
			return nil, err
		}
	}
	if err := sleep(ctx, settleDelay); err != nil {
		return nil, err
	}
	return mcp.NewToolResultText("Tool with logging executed successfully"), nil
}

// toolWithProgress implements test_tool_with_progress.
func (c *conformance) toolWithProgress(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var token mcp.ProgressToken
	if req.Params.Meta != nil {
		token = req.Params.Meta.ProgressToken
	}
	for i, progress := range []int{0, 50, 100} {
		if i > 0 {
			if err := sleep(ctx, notificationGap); err != nil {
				return nil, err
			}
		}
		if token == nil {
			continue
		}
		if err := c.srv.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
			"progressToken": token,
			"progress":      progress,
			"total":         100,
			"message":       fmt.Sprintf("Completed step %d of 100", progress),
		}); err != nil {
			return nil, fmt.Errorf("send progress notification: %w", err)
		}
	}
	if token == nil {
		return mcp.NewToolResultText("Progress tool completed (no progress token was supplied)"), nil
	}
	if err := sleep(ctx, settleDelay); err != nil {
		return nil, err
	}
	return mcp.NewToolResultText(fmt.Sprintf("Progress tool completed (token %v)", token)), nil
}

// samplingKey and elicitationKey name the multi round-trip input requests.
const (
	samplingKey    = "sampling"
	elicitationKey = "elicitation"
)

// toolSampling implements test_sampling. It is written in the multi
// round-trip style (SEP-2322): with a 2026-07-28 client it returns an
// input_required result, and with an earlier client mcp-go sends
// sampling/createMessage to the client and re-invokes the handler with the
// answer. Both work over stdio and HTTP.
func (c *conformance) toolSampling(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if answer := server.SamplingResponse(req.Params.InputResponses, samplingKey); answer != nil {
		return mcp.NewToolResultText("LLM response: " + samplingText(answer.Content)), nil
	}
	prompt, err := req.RequireString("prompt")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	return server.NewInputRequestBuilder("").
		Sample(samplingKey, mcp.CreateMessageParams{
			Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent(prompt)}},
			MaxTokens: 100,
		}).
		ToolResult(), nil
}

// samplingText extracts the text of a sampling answer.
func samplingText(content any) string {
	switch v := content.(type) {
	case mcp.TextContent:
		return v.Text
	case *mcp.TextContent:
		return v.Text
	case map[string]any:
		if text, ok := v["text"].(string); ok {
			return text
		}
	case []mcp.Content:
		var parts []string
		for _, item := range v {
			parts = append(parts, samplingText(item))
		}
		return strings.Join(parts, "\n")
	}
	return "No response"
}

// elicit asks the client for input described by params (multi round-trip
// style, see toolSampling) and reports the answer as "<prefix>: action=...,
// content=...".
func elicit(req mcp.CallToolRequest, prefix string, params mcp.ElicitationParams) *mcp.CallToolResult {
	if answer := server.ElicitationResponse(req.Params.InputResponses, elicitationKey); answer != nil {
		content, err := json.Marshal(answer.Content)
		if err != nil || answer.Content == nil {
			content = []byte("{}")
		}
		return mcp.NewToolResultText(fmt.Sprintf("%s: action=%s, content=%s", prefix, answer.Action, content))
	}
	return server.NewInputRequestBuilder("").Elicit(elicitationKey, params).ToolResult()
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
}
