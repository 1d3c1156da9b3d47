import { createApp } from 'vue'
import App from './App.vue'
import './style.css'
import { boot } from './store.js'

createApp(App).mount('#app')
boot()
