package events

import "encoding/json"

// JSON decodes the message as JSON into v, like lomond's Text.json.
func (e *Text) JSON(v any) error { return json.Unmarshal([]byte(e.Text), v) }
