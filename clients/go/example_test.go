package ocirpc_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	ocirpc "github.com/ocirpc/ocirpc/clients/go"
)

func ExampleStart() {
	client, err := ocirpc.Start(ocirpc.Options{Args: []string{"--tag-ttl", "5m"}})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer client.Close(ctx)
	manifest, err := client.ImageManifest(ctx, "quay.io/org/app:v1", "")
	if errors.Is(err, ocirpc.ErrNotFound) {
		fmt.Println("no such image")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(manifest.Config.Digest)
}

func ExampleClient_StreamImageManifests() {
	client, err := ocirpc.Start(ocirpc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
	stream := client.StreamImageManifests(context.Background(), []string{"quay.io/org/a:v1", "quay.io/org/b:v1"}, "")
	defer stream.Close() // stops the batch if the loop is left early
	for item := range stream.C {
		if item.Err != nil {
			fmt.Println(item.Ref, "failed:", item.Err)
			continue
		}
		fmt.Println(item.Ref, len(item.Manifest.Layers), "layers")
	}
	if err := stream.Err(); err != nil {
		log.Fatal(err)
	}
}

func ExampleRPCError() {
	err := error(&ocirpc.RPCError{Code: ocirpc.CodeAccessDenied, Data: map[string]interface{}{"reason": "unauthorized"}})
	var rpc *ocirpc.RPCError
	if errors.As(err, &rpc) && errors.Is(err, ocirpc.ErrAccessDenied) {
		fmt.Println(rpc.Code, rpc.Reason())
	}
	// Output: -32002 unauthorized
}
