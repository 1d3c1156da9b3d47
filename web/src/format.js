// Times are shown in the reader's own time zone and language (the browser's defaults).
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' })
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' })
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' })
const shortDayFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' })
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short' })

function toDate(t) {
  const d = t instanceof Date ? t : new Date(t)
  return Number.isNaN(d.getTime()) ? null : d
}

export function timeOf(t) {
  const d = toDate(t)
  return d ? timeFmt.format(d) : ''
}

export function fullTime(t) {
  const d = toDate(t)
  return d ? fullFmt.format(d) : ''
}

export function dayKey(t) {
  const d = toDate(t)
  return d ? `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}` : ''
}

function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime()
}

export function dayLabel(t) {
  const d = toDate(t)
  if (!d) return ''
  const days = Math.round((startOfDay(new Date()) - startOfDay(d)) / 86400000)
  if (days === 0) return 'Today'
  if (days === 1) return 'Yesterday'
  return dayFmt.format(d)
}

// Compact "last activity" for the room list.
export function shortWhen(t) {
  const d = toDate(t)
  if (!d || d.getTime() <= 0) return ''
  const days = Math.round((startOfDay(new Date()) - startOfDay(d)) / 86400000)
  if (days === 0) return timeFmt.format(d)
  if (days === 1) return 'Yesterday'
  if (days < 7) return weekdayFmt.format(d)
  return shortDayFmt.format(d)
}

export function initial(name) {
  const s = String(name || '').trim()
  if (!s) return '?'
  return [...s][0].toUpperCase()
}

// A stable pleasant colour for a name.
export function colorFor(name) {
  let h = 0
  for (const ch of String(name || '')) h = (h * 31 + ch.codePointAt(0)) >>> 0
  return `hsl(${h % 360} 55% 45%)`
}

const whenFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })

// A moment to come (the end of a mute or ban, an invite's expiry): the time alone today,
// with the date otherwise.
export function untilText(t) {
  const d = toDate(t)
  if (!d) return ''
  return startOfDay(d) === startOfDay(new Date()) ? timeFmt.format(d) : whenFmt.format(d)
}
