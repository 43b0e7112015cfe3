package rules

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a token.
type tokKind uint8

const (
	tokEOF    tokKind = iota
	tokIdent          // an attribute, list or macro name
	tokInt            // a decimal or 0x-prefixed hexadecimal integer
	tokString         // a double-quoted string
	tokEq             // ==
	tokNe             // !=
	tokIn             // in
	tokAnd            // AND
	tokOr             // OR
	tokNot            // NOT
	tokLParen         // (
	tokRParen         // )
	tokLBrack         // [
	tokRBrack         // ]
	tokComma          // ,
	tokList           // a list expanded from Defs.Lists
	tokAny            // ANY: the whole expression, matching everything
)

// token is one lexical token of a rule.
type token struct {
	kind tokKind
	text string   // the source text (the unquoted value for strings)
	num  uint64   // the value of a tokInt
	list []string // the elements of a tokList
	pos  Pos
	// from names the macro or list the token was expanded from ("" for the
	// rule's own text).
	from string
	// macroEnd marks the ")" that closes a macro's expansion.
	macroEnd bool
}

// describe returns the token as error messages quote it.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "the end of the rule"
	case tokRParen:
		if t.macroEnd {
			return "the end of the macro"
		}
	case tokString:
		return quote(t.text)
	case tokList:
		return "list " + quote(t.text)
	}
	return quote(t.text)
}

// keywords maps the keyword spellings (upper or lower case) to their kinds.
var keywords = map[string]tokKind{
	"AND": tokAnd, "and": tokAnd,
	"OR": tokOr, "or": tokOr,
	"NOT": tokNot, "not": tokNot,
	"IN": tokIn, "in": tokIn,
	"ANY": tokAny, "any": tokAny,
}

// lexError is a lexical error at a position of the text being lexed.
type lexError struct {
	pos Pos
	msg string
}

// lex splits text into tokens. Positions are 1-based lines and columns
// (columns count bytes) of text.
func lex(text string) ([]token, *lexError) {
	var toks []token
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for k := 0; k < n; k++ {
			if text[i] == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
			i++
		}
	}
	for i < len(text) {
		c := text[i]
		pos := Pos{Line: line, Column: col}
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			adv(1)
		case c == '(' || c == ')' || c == '[' || c == ']' || c == ',':
			k := map[byte]tokKind{'(': tokLParen, ')': tokRParen, '[': tokLBrack, ']': tokRBrack, ',': tokComma}[c]
			toks = append(toks, token{kind: k, text: string(c), pos: pos})
			adv(1)
		case c == '=' || c == '!':
			if i+1 < len(text) && text[i+1] == '=' {
				k := tokEq
				if c == '!' {
					k = tokNe
				}
				toks = append(toks, token{kind: k, text: text[i : i+2], pos: pos})
				adv(2)
				continue
			}
			if c == '=' {
				return nil, &lexError{pos, `expected "==", found a single "="`}
			}
			return nil, &lexError{pos, `expected "!=", found a single "!" (use NOT for negation)`}
		case c == '"':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(text) {
				if text[j] == '\\' && j+1 < len(text) {
					switch text[j+1] {
					case '"', '\\':
						b.WriteByte(text[j+1])
					default:
						return nil, &lexError{Pos{line, col + (j - i)}, fmt.Sprintf(`expected \" or \\ after a backslash in a string, found "\%c"`, text[j+1])}
					}
					j += 2
					continue
				}
				if text[j] == '"' {
					closed = true
					break
				}
				if text[j] == '\n' {
					break
				}
				b.WriteByte(text[j])
				j++
			}
			if !closed {
				return nil, &lexError{pos, "expected a closing \" for the string started here"}
			}
			toks = append(toks, token{kind: tokString, text: b.String(), pos: pos})
			adv(j + 1 - i)
		case c >= '0' && c <= '9':
			j := i
			for j < len(text) && isIdentByte(text[j]) {
				j++
			}
			word := text[i:j]
			n, err := strconv.ParseUint(word, 0, 64)
			if err != nil || strings.Contains(word, "_") || (len(word) > 1 && word[0] == '0' && word[1] != 'x' && word[1] != 'X') {
				return nil, &lexError{pos, fmt.Sprintf("expected a decimal or 0x-prefixed hexadecimal integer, found %s", quote(word))}
			}
			toks = append(toks, token{kind: tokInt, text: word, num: n, pos: pos})
			adv(j - i)
		case isIdentStart(c):
			j := i
			for j < len(text) && isIdentByte(text[j]) {
				j++
			}
			word := text[i:j]
			k, ok := keywords[word]
			if !ok {
				k = tokIdent
			}
			toks = append(toks, token{kind: k, text: word, pos: pos})
			adv(j - i)
		default:
			r, _ := utf8.DecodeRuneInString(text[i:])
			return nil, &lexError{pos, fmt.Sprintf("expected an attribute, a value, an operator or a parenthesis, found %q", r)}
		}
	}
	toks = append(toks, token{kind: tokEOF, pos: Pos{Line: line, Column: col}})
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentByte(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
