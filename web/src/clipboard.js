// Copying a code for the person to paste elsewhere.

// Resolves to true when the text is on the clipboard. Plain http outside localhost has no
// clipboard API: then the text of `input` (showing the same text) is selected and copied.
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    if (!input) return false
    input.select()
    try {
      return document.execCommand('copy')
    } catch {
      return false
    }
  }
}
