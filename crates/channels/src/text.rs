//! Text excerpts for the `summary` field: white space folded, bounded, cut
//! on a character boundary; HTML turned into plain text first.

/// Longest summary an adapter produces (the contract allows 4,000).
pub const SUMMARY_CHARS: usize = 1000;

/// `text` with runs of white space folded to one space, trimmed, and cut to
/// at most `max_chars` characters (an ellipsis marks a cut). Control
/// characters are dropped.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut folded = String::with_capacity(text.len().min(max_chars * 4));
    let mut count = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if c.is_control() {
            continue;
        }
        let needed = usize::from(pending_space) + 1;
        if count + needed > max_chars {
            // Room for the ellipsis: drop the last character if needed.
            if max_chars > 0 {
                while count >= max_chars {
                    folded.pop();
                    count -= 1;
                }
                folded.push('…');
            }
            return folded;
        }
        if pending_space {
            folded.push(' ');
            count += 1;
            pending_space = false;
        }
        folded.push(c);
        count += 1;
    }
    folded
}

/// The readable text of an HTML document (tags dropped, block structure as
/// line breaks, links as their text).
pub fn html_to_text(html: &str) -> String {
    // Undecorated: no `**bold**`, `[link]` or footnote markup in summaries.
    html2text::from_read_with_decorator(
        html.as_bytes(),
        100_000,
        html2text::render::TrivialDecorator::new(),
    )
    .unwrap_or_else(|_| {
        // A document html2text cannot read still has text between its tags.
        let mut text = String::with_capacity(html.len());
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    text.push(' ');
                }
                _ if !in_tag => text.push(c),
                _ => {}
            }
        }
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn folds_and_bounds() {
        assert_eq!(
            excerpt("  Where\n\n is   my\tparcel? ", 100),
            "Where is my parcel?"
        );
        assert_eq!(excerpt("abcdef", 4), "abc…");
        assert_eq!(excerpt("abcd", 4), "abcd");
        assert_eq!(excerpt("ab\u{0}cd", 10), "abcd");
        assert_eq!(excerpt("", 10), "");
        assert_eq!(excerpt("ééééé", 3), "éé…");
    }

    #[test]
    fn html_becomes_text() {
        let text =
            html_to_text("<html><body><p>Hello <b>Anna</b>,</p><p>your order</p></body></html>");
        assert!(
            text.contains("Hello") && text.contains("Anna") && text.contains("your order"),
            "{text}"
        );
        assert!(!text.contains('<'));
        let decorated =
            html_to_text("<p>a <b>bold</b> <a href=\"https://x.example/\">link</a></p>");
        assert_eq!(
            excerpt(&decorated, 100),
            "a bold link",
            "no markup in plain text"
        );
    }

    proptest! {
        #[test]
        fn excerpts_never_exceed_the_bound(text in "\\PC{0,300}", max in 0usize..50) {
            prop_assert!(excerpt(&text, max).chars().count() <= max);
        }

        #[test]
        fn html_to_text_never_panics(html in "\\PC{0,300}") {
            let _ = html_to_text(&html);
        }
    }
}
