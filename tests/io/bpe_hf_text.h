#pragma once
// Generated multilingual text for comparing loom's BPE with Hugging Face `tokenizers`:
// words of many scripts, contractions, numbers, punctuation and emoji, joined by every kind
// of white space, plus long runs (the merge loop's heap path) and fixed tricky strings.
// Deterministic for a seed (std::mt19937 draws, reduced with %).
#include <random>
#include <string>
#include <vector>

namespace loom::test {

inline std::vector<std::string> bpe_tricky_strings() {
  return {"", " ", "  ", "\n", "\n\n\n", " \n ", "\t\t", "a\u00A0b", "x\u3000\u3000y",
          "I'm", "DON'T", "they're", "''s", " 's", "rock'n'roll", "o'clock's",
          "12345678901234567890", "3.14159", "\u0661\u0662\u0663\u0664", "\uFF11\uFF12\uFF13",
          "\u216B\u00BD", "cafe\u0301", "na\u00EFve", "\u0928\u092E\u0938\u094D\u0924\u0947",
          "日本語のテキスト。", "中文，标点", "한국어", "🎉🎉🎉",
          "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466", "\U0001F1EB\U0001F1F7",
          "\u2764\uFE0F", "a<|endoftext|>b", "<|endoftext|>", " <|endoftext|> ",
          "<|endoftext|><|endoftext|>", "<|endoftext", "endoftext|>", std::string(1000, 'a'),
          std::string(500, '-'), std::string(200, '1'), std::string(100, ' ') + "x",
          "\x7f\x01\x1b[0m", "\u2028\u2029", "\uFEFFbom", "\U0010FFFF", "\u03A9\u2248\u00E7\u221A",
          "mixed日本English123!!", "\r\n\r\n", "tab\tand  spaces   and\n\nnewlines \n"};
}

inline std::vector<std::string> bpe_generated_docs(unsigned seed, int count) {
  static const std::vector<std::vector<std::string>> kinds = {
      {"the", "of", "and", "tokenizer", "language", "model", "running", "quickly", "Hello",
       "World", "GPT", "BPE", "data", "parallel", "training", "The", "a", "is", "was"},
      {"don't", "it's", "we're", "they've", "I'm", "you'll", "he'd", "DON'T", "rock'n'roll",
       "'s", "o'clock", "'twas", "Jones'"},
      {"Gr\u00FC\u00DFe", "Stra\u00DFe", "\u00FCber", "M\u00E4dchen", "sch\u00F6n", "caf\u00E9",
       "na\u00EFve", "\u00E9l\u00E8ve", "gar\u00E7on", "cafe\u0301", "Ma\u00F1ana"},
      {"привет", "мир", "язык", "модель", "γλώσσα", "Ελληνικά", "שלום", "مرحبا", "العربية"},
      {"中文", "汉字", "标点符号", "你好世界", "日本語", "テキスト", "ひらがな", "한국어",
       "안녕하세요", "ภาษาไทย", "नमस्ते", "हिन्दी"},
      {"🎉", "👍🏽", "👨‍👩‍👧", "❤️", "🇫🇷", "😀😀", "🚀", "✨"},
      {"0", "7", "42", "1999", "2024", "3.14159", "1,000,000", "２０２４", "½", "Ⅻ", "١٢٣", "10^9"},
      {"!", "?", "...", "—", "–", "(", ")", "\"", "«", "»", "„", "“", "”", "#", "@", "$", "%",
       "&", "*", "-", "_", "/", "\\", "...!?", "::", "->", "==", "{", "}"}};
  static const std::vector<std::string> spaces = {" ", " ", " ", " ", " ", " ", "  ", "   ",
                                                  "\t", "\n", "\n\n", " \n", "\r\n", "\u00A0",
                                                  "\u3000", "\u2009", " \t ", ""};
  static const std::vector<unsigned> weights = {40, 6, 8, 8, 8, 4, 8, 10};   // per kind
  std::mt19937 rng(seed);
  auto pick = [&](const std::vector<std::string>& v) -> const std::string& {
    return v[rng() % v.size()];
  };
  unsigned total = 0;
  for (unsigned w : weights) total += w;
  std::vector<std::string> docs;
  for (int d = 0; d < count; ++d) {
    std::string doc;
    if (rng() % 8 == 0) doc += pick(spaces);
    const int n = 20 + static_cast<int>(rng() % 200);
    for (int i = 0; i < n; ++i) {
      unsigned r = rng() % total, k = 0;
      while (r >= weights[k]) r -= weights[k++];
      doc += pick(kinds[k]);
      if (rng() % 60 == 0) doc += std::string(60 + rng() % 200, "a-1 "[rng() % 4]);
      doc += pick(spaces);
    }
    docs.push_back(std::move(doc));
  }
  return docs;
}

}  // namespace loom::test
