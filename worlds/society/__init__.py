"""Role-play at scale: CAMEL's AI Society recipe as a resumable batch of self-contained sessions."""
