package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/gin-gonic/gin"
)

// OpenAPIVersion is the OpenAPI version of GET /v1/openapi.json.
const OpenAPIVersion = "3.0.3"

func (s *server) openAPI(c *gin.Context) {
	ok(c, OpenAPI(s.routes(), s.ctrl.Version()))
}

// OpenAPI builds the OpenAPI 3.0 document of a route table: paths, methods,
// summaries, path and query parameters, bearer security on every route but
// the public ones, and request and response schemas reflected from the Go
// types named in the table.
func OpenAPI(routes []Route, version string) map[string]any {
	ref := &reflector{schemas: map[string]any{}}
	errRef := ref.schema(reflect.TypeOf(control.ErrorBody{}))
	paths := map[string]any{}
	for _, r := range routes {
		item, _ := paths[r.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[r.Path] = item
		}
		item[strings.ToLower(r.Method)] = ref.operation(r, errRef)
	}
	return map[string]any{
		"openapi": OpenAPIVersion,
		"info": map[string]any{
			"title":       "dropmesh agent API",
			"version":     version,
			"description": "Every agent serves this API. Writes are forwarded to the raft leader; reads come from the local replica (?consistent=true asks the leader). Any GET takes ?index=N&wait=30s and answers once the state's index (X-Dropmesh-Index) is above N.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": ref.schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "the cluster's API key (DROPMESH_API_KEY)"},
			},
		},
	}
}

func (ref *reflector) operation(r Route, errRef map[string]any) map[string]any {
	op := map[string]any{
		"operationId":     operationID(r),
		"summary":         r.Summary,
		"tags":            []string{routeTag(r.Path)},
		"x-dropmesh-kind": r.Kind.String(),
	}
	if r.access() == AccessNode {
		op["x-dropmesh-access"] = "node certificate (TLS client certificate from the cluster CA) and the API key"
	}
	if r.access() == AccessNone {
		op["security"] = []any{}
	} else {
		op["security"] = []any{map[string]any{"bearer": []string{}}}
		// The least role of the credential (cluster key: admin; API tokens: their role).
		op["x-dropmesh-role"] = string(requiredRole(r))
	}
	var params []any
	for _, seg := range strings.Split(r.Path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			params = append(params, map[string]any{"name": seg[1 : len(seg)-1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
	}
	for _, p := range queryParams(r) {
		typ := p.Type
		if typ == "" {
			typ = "string"
		}
		params = append(params, map[string]any{"name": p.Name, "in": "query", "required": p.Required, "description": p.Description, "schema": map[string]any{"type": typ}})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	switch {
	case r.RequestType != "":
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			r.RequestType: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
	case r.Request != nil:
		schema := ref.schema(reflect.TypeOf(r.Request))
		content := map[string]any{"application/json": map[string]any{"schema": schema}}
		if r.Path == "/v1/services" {
			content["application/yaml"] = map[string]any{"schema": schema}
		}
		op["requestBody"] = map[string]any{"required": true, "content": content}
	}
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	success := map[string]any{"description": http.StatusText(status)}
	switch {
	case r.ResponseType != "":
		success["content"] = map[string]any{r.ResponseType: map[string]any{"schema": map[string]any{"type": "string"}}}
	case r.Response != nil:
		success["content"] = map[string]any{"application/json": map[string]any{"schema": ref.schema(reflect.TypeOf(r.Response))}}
	}
	op["responses"] = map[string]any{
		strconv.Itoa(status): success,
		"default":            map[string]any{"description": "an error", "content": map[string]any{"application/json": map[string]any{"schema": errRef}}},
	}
	return op
}

func operationID(r Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.Method))
	for _, seg := range strings.Split(r.Path, "/") {
		seg = strings.Trim(seg, "{}")
		seg = strings.NewReplacer(".", "_", "-", "_").Replace(seg)
		if seg != "" {
			b.WriteString("_" + seg)
		}
	}
	return b.String()
}

func routeTag(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) >= 2 && parts[0] == "v1" {
		return parts[1]
	}
	return parts[0]
}

// reflector turns Go types into OpenAPI schemas following encoding/json's
// rules; named structs become components referenced by $ref.
type reflector struct {
	schemas map[string]any
}

var (
	timeType      = reflect.TypeOf(time.Time{})
	rawType       = reflect.TypeOf(json.RawMessage{})
	marshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	schemaerType  = reflect.TypeOf((*interface{ SchemaType() reflect.Type })(nil)).Elem()
)

// componentName is "pkg.Type", unique enough for this API's types.
func componentName(t reflect.Type) string {
	pkg := t.PkgPath()
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	return pkg + "." + t.Name()
}

func (ref *reflector) schema(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{}
	case t.Implements(schemaerType):
		// A type with a compact memory form that marshals as another
		// (raftfsm.History as its Segments) says which.
		return ref.schema(reflect.Zero(t).Interface().(interface{ SchemaType() reflect.Type }).SchemaType())
	case t.Kind() != reflect.Struct && t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		(t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType)):
		// Scalars with their own JSON form (durations) are written as strings.
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := ref.schema(t.Elem())
		if _, isRef := s["$ref"]; isRef {
			return map[string]any{"allOf": []any{s}, "nullable": true}
		}
		out := map[string]any{"nullable": true}
		for k, v := range s {
			out[k] = v
		}
		return out
	case reflect.Interface:
		return map[string]any{}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "format": "int64", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": ref.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": ref.schema(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return ref.object(t)
		}
		name := componentName(t)
		if _, done := ref.schemas[name]; !done {
			ref.schemas[name] = map[string]any{} // placeholder: recursive types end here
			ref.schemas[name] = ref.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// object builds the schema of a struct's JSON fields.
func (ref *reflector) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	ref.fields(t, props)
	return map[string]any{"type": "object", "properties": props}
}

// fields adds the JSON fields of t to props. No field is marked required:
// the same types are requests (where most fields are optional) and answers.
func (ref *reflector) fields(t reflect.Type, props map[string]any) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				ref.fields(ft, props)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = ref.schema(f.Type)
	}
}
