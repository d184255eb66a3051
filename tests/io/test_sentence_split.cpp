// split_sentences (Note [Sentence splitter]) on hand-written cases with exact expected output.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "io/sentence_split.h"

namespace loom {
namespace {

using Sentences = std::vector<std::string>;

Sentences split(std::string_view text) {
  Sentences out;
  for (std::string_view s : split_sentences(text)) out.emplace_back(s);
  return out;
}

TEST(SentenceSplit, EndsAtTerminatorsBeforeACapital) {
  EXPECT_EQ(split("Hello world. This is a test! Is it? Yes."),
            (Sentences{"Hello world.", "This is a test!", "Is it?", "Yes."}));
  EXPECT_EQ(split("It ended. 1939 was a year."), (Sentences{"It ended.", "1939 was a year."}));
  EXPECT_EQ(split("Why?! Because."), (Sentences{"Why?!", "Because."}));
}

TEST(SentenceSplit, NeedsWhiteSpaceAndASentenceStartAfter) {
  // Lower case after ". ", no space after the dot, a terminator at the end of the line.
  EXPECT_EQ(split("This is one. the lower case keeps it going."),
            (Sentences{"This is one. the lower case keeps it going."}));
  EXPECT_EQ(split("Visit example.Com today. Then leave."),
            (Sentences{"Visit example.Com today.", "Then leave."}));
  EXPECT_EQ(split("A comma, then: More. End"), (Sentences{"A comma, then: More.", "End"}));
}

TEST(SentenceSplit, KeepsAbbreviationsWhole) {
  EXPECT_EQ(split("Mr. Smith met Dr. Jones at St. Paul's. They talked."),
            (Sentences{"Mr. Smith met Dr. Jones at St. Paul's.", "They talked."}));
  EXPECT_EQ(split("Apples vs. Oranges is old. Fruit, etc. Are good. Smith et al. Found it."),
            (Sentences{"Apples vs. Oranges is old.", "Fruit, etc. Are good.",
                       "Smith et al. Found it."}));
  EXPECT_EQ(split("It is small, e.g. A mouse. It lives in the U.S. Army base, i.e. In a tent."),
            (Sentences{"It is small, e.g. A mouse.",
                       "It lives in the U.S. Army base, i.e. In a tent."}));
  // Number abbreviations hold only before a digit.
  EXPECT_EQ(split("See No. 5 on Jan. 12 in Vol. 3. No. It is not."),
            (Sentences{"See No. 5 on Jan. 12 in Vol. 3.", "No.", "It is not."}));
  EXPECT_EQ(split("He lived (c. AD 1200 to d. 1250). The Lt-Gen. Smith and Minneapolis-St. Paul."),
            (Sentences{"He lived (c. AD 1200 to d. 1250).",
                       "The Lt-Gen. Smith and Minneapolis-St. Paul."}));
  // Inside brackets the word is still found.
  EXPECT_EQ(split("He met (Mr. Brown) there. Then left."),
            (Sentences{"He met (Mr. Brown) there.", "Then left."}));
}

TEST(SentenceSplit, KeepsInitialsWhole) {
  EXPECT_EQ(split("J. R. R. Tolkien wrote books. He was English."),
            (Sentences{"J. R. R. Tolkien wrote books.", "He was English."}));
  EXPECT_EQ(split("J.R.R. Tolkien wrote. The end."),
            (Sentences{"J.R.R. Tolkien wrote.", "The end."}));
  EXPECT_EQ(split("Written by Ö. Ähnlich. Read it."),
            (Sentences{"Written by Ö. Ähnlich.", "Read it."}));
  // A two-letter word is not an initial.
  EXPECT_EQ(split("He was at GE. Then IBM."), (Sentences{"He was at GE.", "Then IBM."}));
}

TEST(SentenceSplit, DecimalNumbersDoNotSplit) {
  EXPECT_EQ(split("Pi is about 3.14 and e is 2.718. Both are irrational."),
            (Sentences{"Pi is about 3.14 and e is 2.718.", "Both are irrational."}));
  EXPECT_EQ(split("Version 2.0.1 shipped. 3.5 million used it."),
            (Sentences{"Version 2.0.1 shipped.", "3.5 million used it."}));
}

TEST(SentenceSplit, QuotesAndBrackets) {
  EXPECT_EQ(split("He said \"Stop.\" Then he left."),
            (Sentences{"He said \"Stop.\"", "Then he left."}));
  EXPECT_EQ(split("Zhuangzi wrote, \"A petty thief is put in jail. A great brigand becomes a "
                  "ruler of a Nation.\" Diogenes of Sinope."),
            (Sentences{"Zhuangzi wrote, \"A petty thief is put in jail.",
                       "A great brigand becomes a ruler of a Nation.\"", "Diogenes of Sinope."}));
  EXPECT_EQ(split("(This is one.) And another. He left. \"Come back,\" she said."),
            (Sentences{"(This is one.)", "And another.", "He left.", "\"Come back,\" she said."}));
  EXPECT_EQ(split("He asked \u201cwhy?!\u201d Nobody knew. \u00abOui.\u00bb \u00bfQu\u00e9?"),
            (Sentences{"He asked \u201cwhy?!\u201d", "Nobody knew.", "\u00abOui.\u00bb",
                       "\u00bfQu\u00e9?"}));
}

TEST(SentenceSplit, Ellipsis) {
  EXPECT_EQ(split("Jesus Christ and ... the first anarchist."),
            (Sentences{"Jesus Christ and ... the first anarchist."}));
  EXPECT_EQ(split("He waited... Then he left."), (Sentences{"He waited...", "Then he left."}));
  EXPECT_EQ(split("Wait\u2026 \u00dcber alles."), (Sentences{"Wait\u2026", "\u00dcber alles."}));
}

TEST(SentenceSplit, NonAsciiLettersStartSentences) {
  EXPECT_EQ(split("Er kam. \u00dcber den Berg ging er. \u00c7a va."),
            (Sentences{"Er kam.", "\u00dcber den Berg ging er.", "\u00c7a va."}));
  EXPECT_EQ(split("\u0421\u043c\u043e\u0442\u0440\u0438. \u042d\u0442\u043e \u0434\u043e\u043c."),
            (Sentences{"\u0421\u043c\u043e\u0442\u0440\u0438.", "\u042d\u0442\u043e \u0434\u043e\u043c."}));
  EXPECT_EQ(split("\u6771\u4eac\u306f\u5927\u304d\u3044. \u5927\u962a\u3082."),
            (Sentences{"\u6771\u4eac\u306f\u5927\u304d\u3044.", "\u5927\u962a\u3082."}));
  // A non-ASCII digit-like symbol or punctuation does not start one.
  EXPECT_EQ(split("Cost 5. \u20ac10 later."), (Sentences{"Cost 5. \u20ac10 later."}));
}

TEST(SentenceSplit, LineBreaksEndSentencesAndBlankOnesVanish) {
  EXPECT_EQ(split("History.\nOrigins\r\nThe first one. The second one\n\n  \t \nNext doc line\r"
                  "Last\u2028Sep\u2029Para\u0085End"),
            (Sentences{"History.", "Origins", "The first one.", "The second one",
                       "Next doc line", "Last", "Sep", "Para", "End"}));
  EXPECT_TRUE(split("").empty());
  EXPECT_TRUE(split(" \n\n\t\r\n \u00a0 \u3000").empty());
}

TEST(SentenceSplit, TrimsAsciiAndUnicodeWhiteSpace) {
  EXPECT_EQ(split("  Leading and trailing.   \t"), (Sentences{"Leading and trailing."}));
  EXPECT_EQ(split("\u00a0End.\u00a0Next one.\u3000"), (Sentences{"End.", "Next one."}));
}

TEST(SentenceSplit, InvalidUtf8PassesThrough) {
  const std::string text = "Bad \xff\xfe byte. Next \xc3 one.";
  EXPECT_EQ(split(text), (Sentences{"Bad \xff\xfe byte.", "Next \xc3 one."}));
}

TEST(SentenceSplit, AppendsToTheCallersVectorAndReusesItsCapacity) {
  std::vector<std::string_view> out;
  split_sentences("One. Two.", out);
  split_sentences("Three.", out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2], "Three.");
  const std::string_view doc = "Alpha. Beta. Gamma.";
  out.clear();
  split_sentences(doc, out);
  const auto* data = out.data();
  out.clear();
  split_sentences(doc, out);
  EXPECT_EQ(out.data(), data) << "a second document of the same size reallocated";
  // The views point into the document.
  EXPECT_EQ(out[1].data(), doc.data() + 7);
}

}  // namespace
}  // namespace loom
