// Herald portal embedding helper. Include on the page that holds the portal's <iframe>:
//   <script src="https://herald.example.com/portal/embed.js" defer></script>
// Each portal iframe from this script's origin then grows and shrinks with its content.
(() => {
  const origin = new URL(document.currentScript.src).origin;
  window.addEventListener("message", (event) => {
    if (event.origin !== origin || event.data?.type !== "herald:resize") return;
    for (const frame of document.querySelectorAll("iframe")) {
      if (frame.contentWindow === event.source) {
        const height = Number(event.data.height);
        if (Number.isFinite(height) && height > 0) frame.style.height = `${Math.ceil(height)}px`;
      }
    }
  });
})();
