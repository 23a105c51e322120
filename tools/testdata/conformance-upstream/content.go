package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// addResources registers the static resources, the watched resource used by
// the subscribe scenarios, and the parameterised resource template.
func addResources(s *server.MCPServer) {
	s.AddResource(mcp.NewResource("test://static-text", "static-text",
		mcp.WithResourceTitle("Static Text Resource"),
		mcp.WithResourceDescription("A static text resource for testing"),
		mcp.WithMIMEType("text/plain")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{
				URI:      "test://static-text",
				MIMEType: "text/plain",
				Text:     "This is the content of the static text resource.",
			}}, nil
		})

	s.AddResource(mcp.NewResource("test://static-binary", "static-binary",
		mcp.WithResourceTitle("Static Binary Resource"),
		mcp.WithResourceDescription("A static binary resource (image) for testing"),
		mcp.WithMIMEType("image/png")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.BlobResourceContents{
				URI:      "test://static-binary",
				MIMEType: "image/png",
				Blob:     testImagePNG,
			}}, nil
		})

	s.AddResource(mcp.NewResource("test://watched-resource", "watched-resource",
		mcp.WithResourceTitle("Watched Resource"),
		mcp.WithResourceDescription("A resource clients can subscribe to"),
		mcp.WithMIMEType("text/plain")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{
				URI:      "test://watched-resource",
				MIMEType: "text/plain",
				Text:     "Watched resource content",
			}}, nil
		})

	s.AddResourceTemplate(mcp.NewResourceTemplate("test://template/{id}/data", "template",
		mcp.WithTemplateDescription("A resource template with parameter substitution"),
		mcp.WithTemplateMIMEType("application/json")),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			id := fmt.Sprint(req.Params.Arguments["id"])
			if strings.HasPrefix(id, "[") { // a single-element list from the URI template matcher
				id = strings.Trim(id, "[]")
			}
			body, err := json.Marshal(map[string]any{
				"id":           id,
				"templateTest": true,
				"data":         "Data for ID: " + id,
			})
			if err != nil {
				return nil, fmt.Errorf("encode template data: %w", err)
			}
			return []mcp.ResourceContents{mcp.TextResourceContents{
				URI:      req.Params.URI,
				MIMEType: "application/json",
				Text:     string(body),
			}}, nil
		})
}

// addPrompts registers the prompts of the prompts-* scenarios.
func addPrompts(s *server.MCPServer) {
	s.AddPrompt(mcp.NewPrompt("test_simple_prompt",
		mcp.WithPromptTitle("Simple Test Prompt"),
		mcp.WithPromptDescription("A simple prompt without arguments")),
		func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return mcp.NewGetPromptResult("A simple prompt", []mcp.PromptMessage{
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("This is a simple prompt for testing.")),
			}), nil
		})

	s.AddPrompt(mcp.NewPrompt("test_prompt_with_arguments",
		mcp.WithPromptTitle("Prompt With Arguments"),
		mcp.WithPromptDescription("A prompt with required arguments"),
		mcp.WithArgument("arg1", mcp.ArgumentDescription("First test argument"), mcp.RequiredArgument()),
		mcp.WithArgument("arg2", mcp.ArgumentDescription("Second test argument"), mcp.RequiredArgument())),
		func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			text := fmt.Sprintf("Prompt with arguments: arg1='%s', arg2='%s'", req.Params.Arguments["arg1"], req.Params.Arguments["arg2"])
			return mcp.NewGetPromptResult("A prompt with arguments", []mcp.PromptMessage{
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
			}), nil
		})

	s.AddPrompt(mcp.NewPrompt("test_prompt_with_embedded_resource",
		mcp.WithPromptTitle("Prompt With Embedded Resource"),
		mcp.WithPromptDescription("A prompt that includes an embedded resource"),
		mcp.WithArgument("resourceUri", mcp.ArgumentDescription("URI of the resource to embed"), mcp.RequiredArgument())),
		func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			uri := req.Params.Arguments["resourceUri"]
			if uri == "" {
				return nil, fmt.Errorf("argument resourceUri is required")
			}
			return mcp.NewGetPromptResult("A prompt with an embedded resource", []mcp.PromptMessage{
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewEmbeddedResource(mcp.TextResourceContents{
					URI:      uri,
					MIMEType: "text/plain",
					Text:     "Embedded resource content for testing.",
				})),
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Please process the embedded resource above.")),
			}), nil
		})

	s.AddPrompt(mcp.NewPrompt("test_prompt_with_image",
		mcp.WithPromptTitle("Prompt With Image"),
		mcp.WithPromptDescription("A prompt that includes image content")),
		func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return mcp.NewGetPromptResult("A prompt with an image", []mcp.PromptMessage{
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewImageContent(testImagePNG, "image/png")),
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Please analyze the image above.")),
			}), nil
		})
}

// promptArgumentValues are the completion candidates offered for the
// arguments of test_prompt_with_arguments.
var promptArgumentValues = []string{"paris", "park", "party", "test", "testValue1", "testValue2"}

// promptCompletions answers completion/complete for prompt arguments.
type promptCompletions struct{}

// CompletePromptArgument returns the candidates that start with the typed
// value (case-insensitively) for test_prompt_with_arguments, and none for
// other prompts.
func (promptCompletions) CompletePromptArgument(_ context.Context, promptName string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if promptName != "test_prompt_with_arguments" {
		return &mcp.Completion{Values: []string{}}, nil
	}
	return completeFrom(promptArgumentValues, arg.Value), nil
}

// resourceCompletions answers completion/complete for resource template
// arguments.
type resourceCompletions struct{}

// CompleteResourceArgument offers a few ids for test://template/{id}/data.
func (resourceCompletions) CompleteResourceArgument(_ context.Context, uri string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if uri != "test://template/{id}/data" || arg.Name != "id" {
		return &mcp.Completion{Values: []string{}}, nil
	}
	return completeFrom([]string{"1", "42", "123"}, arg.Value), nil
}

// completeFrom returns the candidates that start with prefix.
func completeFrom(candidates []string, prefix string) *mcp.Completion {
	values := []string{}
	for _, c := range candidates {
		if strings.HasPrefix(strings.ToLower(c), strings.ToLower(prefix)) {
			values = append(values, c)
		}
	}
	sort.Strings(values)
	return &mcp.Completion{Values: values, Total: len(values), HasMore: false}
}
