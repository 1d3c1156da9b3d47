// A picture the person picked, read as the data URL that REST uploads take (`avatarImage`).
// The server decides the type from the bytes; the checks here only spare a pointless upload.
export const MAX_PICTURE = 1024 * 1024
export const PICTURE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp']
export const PICTURE_ACCEPT = PICTURE_TYPES.join(',')

// Resolves to the data URL; rejects with an Error whose message is a sentence for the person.
export function readPicture(file) {
  return new Promise((resolve, reject) => {
    if (file.type && !PICTURE_TYPES.includes(file.type)) {
      reject(new Error('Choose a PNG, JPEG, GIF or WebP picture.'))
      return
    }
    if (file.size > MAX_PICTURE) {
      reject(new Error(`That picture is ${(file.size / 1048576).toFixed(1)} MiB: the limit is 1 MiB.`))
      return
    }
    const reader = new FileReader()
    reader.onload = () => resolve(String(reader.result))
    reader.onerror = () => reject(new Error('That file could not be read.'))
    reader.readAsDataURL(file)
  })
}
