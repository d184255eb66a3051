#pragma once
// Sentences of a document, for BERT's sentence pairs (io/bert_examples.h): the token stage
// splits each document with split_sentences() and writes each sentence's ids followed by
// [SEP] (Note [BERT token stream]).
//
// Note [Sentence splitter]
// A rule-based splitter in the spirit of the punkt-less splitters that BERT-style
// pipelines use on Wikipedia, where a line is a paragraph or a heading:
//   1. Every line break ends a sentence: "\n", "\r", "\r\n", U+0085, U+2028 and U+2029.
//   2. Inside a line, a sentence ends after a run of terminators - '.', '!', '?' and the
//      ellipsis U+2026, in any mix ("?!", "...") - and the closing quotes and brackets
//      that follow it ( " ' ) ] } U+2019 U+201D U+00BB ), when white space follows and the
//      next visible character can start a sentence: an ASCII capital, a digit, an opening
//      quote or bracket ( " ' ( [ { U+2018 U+201C U+00AB U+00BF U+00A1 ), or any non-ASCII
//      letter (scripts without case, and capitals beyond ASCII, start sentences too; a
//      lower-case non-ASCII letter after ". " is rare enough in running text to accept).
//   3. Except when the run is a single '.' after
//        - a known abbreviation, compared case-sensitively with the word before the '.'
//          (the characters back to white space, '-', '/' or a dash, less opening quotes
//          and brackets: "(Mr.", "Lt-Gen.", "Minneapolis-St."):
//            titles   Mr Mrs Ms Dr Prof St Sr Jr Mt Ft Fr Gen Col Lt Sgt Capt Cmdr Adm
//                     Gov Sen Rep Rev Hon Pres Messrs
//            Latin    vs cf viz etc al (et al.) c ca (circa: "c. AD 600") approx
//          ("etc." ends sentences too; the list prefers a missed split, which leaves a
//          longer sentence, to a wrong one, which cuts a sentence in two);
//        - an abbreviation that precedes a number, when the next character is a digit:
//            No Nos Vol vol pp p Fig fig Ch ch Art art Op op, fl b d (floruit, born,
//            died: "(d. 1250)") and the months
//            Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec ("Jan. 5", "No. 7");
//        - a single capital letter (an initial: "J. R. R. Tolkien", "Ö. Smith"); so
//          "World War I. Then" stays one sentence, the price of keeping initials whole;
//        - single letters joined by dots: "J.R.R.", "U.S.", "U.S.A.", "e.g.", "i.e."
//          (so "in the U.S. The" stays one sentence too).
//      A decimal number ("3.14", "v2.0.1") never splits: no white space follows its dots.
//   4. Sentences are trimmed of white space (ASCII and Unicode: NBSP, U+3000, ...) and
//      empty ones are dropped, so blank lines and lines of spaces give nothing.
// The splitter works on bytes and decodes UTF-8 only where rules 2-3 look at a non-ASCII
// character; invalid UTF-8 is passed through (it is neither a letter nor white space).
#include <string_view>
#include <vector>

namespace loom {

// Appends the sentences of `document` to `out` (views into `document`, in order). Nothing
// is allocated once `out` has the capacity (clear() it between documents and reuse it).
void split_sentences(std::string_view document, std::vector<std::string_view>& out);

// The same, into a new vector.
std::vector<std::string_view> split_sentences(std::string_view document);

}  // namespace loom
