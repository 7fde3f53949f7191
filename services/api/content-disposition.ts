/**
 * Content-Disposition with a file name (RFC 6266): a quoted ASCII fallback in
 * which anything that could end or bend the quoted string is replaced, and
 * the exact name, UTF-8 and percent-encoded, in filename* (RFC 8187).
 */
export function contentDisposition(type: 'inline' | 'attachment', name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%;]/g, '_') || 'download';
  const exact = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${type}; filename="${fallback}"; filename*=UTF-8''${exact}`;
}
