package lomond

import (
	"reflect"
	"strings"
)

// handlerMethods are the methods a handler may have, with the interface
// each belongs to: what checkHandler looks for.
var handlerMethods = []struct {
	name  string
	iface reflect.Type
}{
	{"OnConnecting", reflect.TypeFor[ConnectingHandler]()},
	{"OnConnectFail", reflect.TypeFor[ConnectFailHandler]()},
	{"OnConnected", reflect.TypeFor[ConnectedHandler]()},
	{"OnRejected", reflect.TypeFor[RejectedHandler]()},
	{"OnReady", reflect.TypeFor[ReadyHandler]()},
	{"OnPoll", reflect.TypeFor[PollHandler]()},
	{"OnPing", reflect.TypeFor[PingHandler]()},
	{"OnPong", reflect.TypeFor[PongHandler]()},
	{"OnText", reflect.TypeFor[TextHandler]()},
	{"OnBinary", reflect.TypeFor[BinaryHandler]()},
	{"OnClosing", reflect.TypeFor[ClosingHandler]()},
	{"OnClosed", reflect.TypeFor[ClosedHandler]()},
	{"OnUnresponsive", reflect.TypeFor[UnresponsiveHandler]()},
	{"OnProtocolError", reflect.TypeFor[ProtocolErrorHandler]()},
	{"OnDisconnected", reflect.TypeFor[DisconnectedHandler]()},
	{"OnBackOff", reflect.TypeFor[BackOffHandler]()},
	{"OnStream", reflect.TypeFor[StreamHandler]()},
	{"OnEvent", reflect.TypeFor[Observer]()},
	{"OnSend", reflect.TypeFor[SendObserver]()},
}

// checkHandler says what is wrong with h as a handler, or "" if nothing is.
// It catches what the compiler cannot, because every method is optional:
// no handler method at all, a handler method with the wrong signature
// (never called), and methods with pointer receivers on a value passed by
// value (never called either: the value has no such method). It runs once
// per run, not per event.
func checkHandler(h any) string {
	if h == nil {
		return "nil handler"
	}
	v := reflect.ValueOf(h)
	t := v.Type()
	if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Func) && v.IsNil() {
		return "nil " + t.String()
	}
	var found int
	var wrong, ptrOnly []string
	for _, m := range handlerMethods {
		if t.Implements(m.iface) {
			found++
			continue
		}
		if meth, ok := t.MethodByName(m.name); ok {
			wrong = append(wrong, m.name+" has the signature "+funcSignature(meth.Type, 1)+
				", want "+funcSignature(m.iface.Method(0).Type, 0))
			continue
		}
		if t.Kind() == reflect.Pointer {
			continue
		}
		pt := reflect.PointerTo(t)
		if pt.Implements(m.iface) {
			ptrOnly = append(ptrOnly, m.name)
		} else if meth, ok := pt.MethodByName(m.name); ok {
			wrong = append(wrong, m.name+" has the signature "+funcSignature(meth.Type, 1)+
				", want "+funcSignature(m.iface.Method(0).Type, 0))
		}
	}
	var problems []string
	if len(wrong) > 0 {
		problems = append(problems, t.String()+"."+strings.Join(wrong, "; "+t.String()+"."))
	}
	if len(ptrOnly) > 0 {
		verb := "has a pointer receiver"
		if len(ptrOnly) > 1 {
			verb = "have pointer receivers"
		}
		problems = append(problems, strings.Join(ptrOnly, ", ")+" "+verb+" and would never be called on a "+
			t.String()+" value: pass a pointer ("+pointerHint(t)+")")
	}
	if len(problems) > 0 {
		return strings.Join(problems, "; ")
	}
	if found == 0 {
		return t.String() + " has no handler method (OnReady, OnText, OnBinary, OnClosed, another On<Event> method, OnEvent or OnSend)"
	}
	return ""
}

// pointerHint shows how to pass a pointer to a value of type t.
func pointerHint(t reflect.Type) string {
	if t.Kind() == reflect.Struct {
		return "&" + t.String() + "{}"
	}
	return "a *" + t.String()
}

// funcSignature writes a method's type as func(params) results, leaving
// out the first skip parameters (the receiver of a method expression).
func funcSignature(ft reflect.Type, skip int) string {
	var b strings.Builder
	b.WriteString("func(")
	for i := skip; i < ft.NumIn(); i++ {
		if i > skip {
			b.WriteString(", ")
		}
		b.WriteString(ft.In(i).String())
	}
	b.WriteByte(')')
	switch ft.NumOut() {
	case 0:
	case 1:
		b.WriteString(" " + ft.Out(0).String())
	default:
		b.WriteString(" (")
		for i := 0; i < ft.NumOut(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(ft.Out(i).String())
		}
		b.WriteByte(')')
	}
	return b.String()
}

// handlerError is an invalid handler: it reads "lomond: invalid handler:
// ..." once, however deep in a composition the problem is, and matches
// ErrInvalidHandler (and ErrInvalidOption when an option carried it).
type handlerError struct {
	msg    string
	option bool
}

func invalidHandler(where, problem string) error {
	return &handlerError{msg: where + problem}
}

func (e *handlerError) Error() string { return ErrInvalidHandler.Error() + ": " + e.msg }

func (e *handlerError) Is(target error) bool {
	return target == ErrInvalidHandler || (e.option && target == ErrInvalidOption)
}
